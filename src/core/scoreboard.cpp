#include <sys/mman.h>

#include <cerrno>
#include <new>
#include <preforkd/scoreboard.hpp>
#include <utility>

namespace preforkd {

std::string_view to_string(worker_state s) noexcept {
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

result<scoreboard> scoreboard::create(uint32_t capacity) {
    size_t header_len = (sizeof(scoreboard_header) + 63) & ~size_t{63};
    size_t length = header_len + sizeof(scoreboard_slot) * capacity;
    // MAP_NORESERVE + lazily touched slots: reserving max_workers_limit slots costs only the
    // pages of the slots actually used.
    void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return error::from_errno(errno, "cannot map the scoreboard");
    scoreboard sb;
    sb.base_ = base;
    sb.length_ = length;
    sb.header_ = new (base) scoreboard_header();
    sb.header_->capacity = capacity;
    sb.slots_ = reinterpret_cast<scoreboard_slot*>(static_cast<char*>(base) + header_len);
    return sb;
}

scoreboard::scoreboard(scoreboard&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)),
      length_(std::exchange(o.length_, 0)),
      header_(std::exchange(o.header_, nullptr)),
      slots_(std::exchange(o.slots_, nullptr)) {}

scoreboard& scoreboard::operator=(scoreboard&& o) noexcept {
    if (this != &o) {
        this->~scoreboard();
        new (this) scoreboard(std::move(o));
    }
    return *this;
}

scoreboard::~scoreboard() {
    if (base_) ::munmap(base_, length_);
}

void scoreboard::prepare(uint32_t i, uint32_t generation, int64_t now_ms) noexcept {
    uint32_t used_now = used();
    if (i >= used_now) {
        // First use of the slots up to i: construct them (the zero page is already zeros,
        // but atomics are objects and get their lifetime started properly).
        for (uint32_t j = used_now; j <= i; ++j) new (&slots_[j]) scoreboard_slot();
        header_->high_water.store(i + 1, std::memory_order_release);
    }
    scoreboard_slot& s = slots_[i];
    s.pid.store(0, std::memory_order_relaxed);
    s.generation.store(generation, std::memory_order_relaxed);
    s.connections.store(0, std::memory_order_relaxed);
    s.requests.store(0, std::memory_order_relaxed);
    s.bytes.store(0, std::memory_order_relaxed);
    s.accepted.store(0, std::memory_order_relaxed);
    s.proxy_rejected.store(0, std::memory_order_relaxed);
    s.heartbeat_ms.store(now_ms, std::memory_order_relaxed);
    s.started_ms.store(now_ms, std::memory_order_relaxed);
    s.exit_reason[0] = '\0';
    s.tls_handshakes.store(0, std::memory_order_relaxed);
    s.tls_resumed.store(0, std::memory_order_relaxed);
    s.tls_failures.store(0, std::memory_order_relaxed);
    s.tls_send_path.store(0, std::memory_order_relaxed);
    s.set_state(worker_state::starting);
}

void scoreboard::release(uint32_t i) noexcept {
    scoreboard_slot& s = slots_[i];
    s.set_state(worker_state::empty);
    s.pid.store(0, std::memory_order_relaxed);
    s.connections.store(0, std::memory_order_relaxed);
}

}  // namespace preforkd
