// TEMPORARY (http branch only): minimal stand-ins for the logger and scoreboard bodies,
// which are placeholders on this branch (src/core/log.cpp, src/core/scoreboard.cpp) and are
// being written by the lead elsewhere. Every definition is weak, so the real ones win as
// soon as they are linked in. Delete this file (and its line in tests/CMakeLists.txt) when
// the branches are merged.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <preforkd/config.hpp>
#include <preforkd/log.hpp>
#include <preforkd/scoreboard.hpp>

namespace preforkd {

#define PREFORKD_TEMP_WEAK __attribute__((weak))

PREFORKD_TEMP_WEAK std::string_view to_string(log_level level) noexcept {
    switch (level) {
        case log_level::debug:
            return "debug";
        case log_level::info:
            return "info";
        case log_level::warn:
            return "warn";
        case log_level::error:
            return "error";
        case log_level::crit:
            return "crit";
    }
    return "?";
}

PREFORKD_TEMP_WEAK void logger::write_line(log_level level, std::string_view message) noexcept {
    std::string line =
        fmt::format("[{}] {}[{}]: {}\n", to_string(level), role_, ::getpid(), message);
    (void)!::write(fd(), line.data(), line.size());
}

PREFORKD_TEMP_WEAK std::string_view to_string(worker_state s) noexcept {
    switch (s) {
        case worker_state::empty:
            return "empty";
        case worker_state::starting:
            return "starting";
        case worker_state::idle:
            return "idle";
        case worker_state::busy:
            return "busy";
        case worker_state::retiring:
            return "retiring";
    }
    return "?";
}

PREFORKD_TEMP_WEAK result<scoreboard> scoreboard::create(uint32_t capacity) {
    scoreboard b;
    b.length_ = sizeof(scoreboard_slot) * (capacity + 1);
    b.base_ = ::mmap(nullptr, b.length_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b.base_ == MAP_FAILED) return error::from_errno(errno, "mmap");
    b.header_ = new (b.base_) scoreboard_header();
    b.header_->capacity = capacity;
    b.slots_ =
        reinterpret_cast<scoreboard_slot*>(static_cast<char*>(b.base_) + sizeof(scoreboard_slot));
    for (uint32_t i = 0; i < capacity; ++i) new (&b.slots_[i]) scoreboard_slot();
    return b;
}

PREFORKD_TEMP_WEAK scoreboard::scoreboard(scoreboard&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)),
      length_(std::exchange(o.length_, 0)),
      header_(std::exchange(o.header_, nullptr)),
      slots_(std::exchange(o.slots_, nullptr)) {}

PREFORKD_TEMP_WEAK scoreboard& scoreboard::operator=(scoreboard&& o) noexcept {
    std::swap(base_, o.base_);
    std::swap(length_, o.length_);
    std::swap(header_, o.header_);
    std::swap(slots_, o.slots_);
    return *this;
}

PREFORKD_TEMP_WEAK scoreboard::~scoreboard() {
    if (base_) ::munmap(base_, length_);
}

PREFORKD_TEMP_WEAK void scoreboard::prepare(uint32_t i, uint32_t generation,
                                            int64_t now_ms) noexcept {
    scoreboard_slot& s = slots_[i];
    s.generation.store(generation);
    s.set_state(worker_state::starting);
    s.started_ms.store(now_ms);
    s.heartbeat_ms.store(now_ms);
    if (header_->high_water.load() <= i)
        header_->high_water.store(i + 1, std::memory_order_release);
}

PREFORKD_TEMP_WEAK void scoreboard::release(uint32_t i) noexcept {
    scoreboard_slot& s = slots_[i];
    s.pid.store(0);
    s.set_state(worker_state::empty);
}

// Only what a default-constructed config needs: "host:port".
PREFORKD_TEMP_WEAK result<listen_address> parse_listen_address(std::string_view text) {
    listen_address a;
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return error("no port");
    a.host = std::string(text.substr(0, colon));
    a.port = static_cast<uint16_t>(std::stoi(std::string(text.substr(colon + 1))));
    return a;
}

}  // namespace preforkd
