#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/unique_fd.hpp>
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

traffic_counters& traffic_counters::operator+=(const traffic_counters& o) noexcept {
    requests += o.requests;
    bytes += o.bytes;
    accepted += o.accepted;
    for (size_t i = 0; i < responses.size(); ++i) responses[i] += o.responses[i];
    tls_handshakes += o.tls_handshakes;
    tls_resumed += o.tls_resumed;
    tls_failures += o.tls_failures;
    proxy_rejected += o.proxy_rejected;
    return *this;
}

void traffic_counters::count_response(int status) noexcept {
    if (const int c = status_class(status); c >= 0) ++responses[static_cast<size_t>(c)];
}

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

}  // namespace

traffic_counters scoreboard_slot::load_counters() const noexcept {
    traffic_counters c;
    c.requests = requests.load(relaxed);
    c.bytes = bytes.load(relaxed);
    c.accepted = accepted.load(relaxed);
    for (size_t i = 0; i < c.responses.size(); ++i) c.responses[i] = responses[i].load(relaxed);
    c.tls_handshakes = tls_handshakes.load(relaxed);
    c.tls_resumed = tls_resumed.load(relaxed);
    c.tls_failures = tls_failures.load(relaxed);
    c.proxy_rejected = proxy_rejected.load(relaxed);
    return c;
}

traffic_counters scoreboard_header::load_retired() const noexcept {
    traffic_counters c;
    c.requests = retired_requests.load(relaxed);
    c.bytes = retired_bytes.load(relaxed);
    c.accepted = retired_accepted.load(relaxed);
    for (size_t i = 0; i < c.responses.size(); ++i)
        c.responses[i] = retired_responses[i].load(relaxed);
    c.tls_handshakes = retired_tls_handshakes.load(relaxed);
    c.tls_resumed = retired_tls_resumed.load(relaxed);
    c.tls_failures = retired_tls_failures.load(relaxed);
    c.proxy_rejected = retired_proxy_rejected.load(relaxed);
    return c;
}

supervisor_counters scoreboard_header::load_supervisor_counters() const noexcept {
    return {reloads.load(relaxed), worker_crashes.load(relaxed), fork_failures.load(relaxed)};
}

void scoreboard::yield_now() noexcept { ::sched_yield(); }

namespace {

// The first bytes of every scoreboard mapping. A reader in another process (`--status`, maybe
// another version of the binary) trusts nothing past it until magic, version and sizes match
// its own: the slots' layout is compiled in, so any difference makes it unreadable.
struct file_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;  // sizeof(scoreboard_header)
    uint32_t slot_size;    // sizeof(scoreboard_slot)
    uint32_t capacity;
    uint64_t length;  // of the whole mapping (the file's size)
    uint32_t header_offset;
    uint32_t slots_offset;
    // Written last, with release: a reader that sees it sees the fields above.
    std::atomic<uint32_t> ready;
};
static_assert(std::atomic<uint32_t>::is_always_lock_free);

constexpr char file_magic[8] = {'p', 'r', 'e', 'f', 'o', 'r', 'k', 'S'};
// Raised when a field changes meaning; a change of size is caught by the sizes alone.
constexpr uint32_t file_version = 1;

constexpr size_t round64(size_t n) noexcept { return (n + 63) & ~size_t{63}; }

struct layout {
    size_t header_offset, slots_offset, length;
};

constexpr layout layout_for(uint32_t capacity) noexcept {
    const size_t header_offset = round64(sizeof(file_header));
    const size_t slots_offset = header_offset + round64(sizeof(scoreboard_header));
    return {header_offset, slots_offset, slots_offset + sizeof(scoreboard_slot) * capacity};
}

}  // namespace

char state_char(worker_state s) noexcept {
    switch (s) {
        case worker_state::starting:
            return 'S';
        case worker_state::idle:
            return '_';
        case worker_state::busy:
            return 'W';
        case worker_state::retiring:
            return 'G';
        case worker_state::empty:
            return '.';
    }
    return '?';
}

result<scoreboard> scoreboard::map(uint32_t capacity, int fd) {
    const layout l = layout_for(capacity);
    if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(l.length)) != 0)
        return error::from_errno(errno, "cannot size the scoreboard file");
    // MAP_NORESERVE + lazily touched slots: reserving max_workers_limit slots costs only the
    // pages of the slots actually used (a file is sparse until written, on tmpfs as on disk).
    const int flags = MAP_SHARED | MAP_NORESERVE | (fd < 0 ? MAP_ANONYMOUS : 0);
    void* base = ::mmap(nullptr, l.length, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (base == MAP_FAILED) return error::from_errno(errno, "cannot map the scoreboard");
    char* bytes = static_cast<char*>(base);
    scoreboard sb;
    sb.base_ = base;
    sb.length_ = l.length;
    sb.header_ = new (bytes + l.header_offset) scoreboard_header();
    sb.header_->capacity = capacity;
    sb.slots_ = reinterpret_cast<scoreboard_slot*>(bytes + l.slots_offset);
    auto* fh = new (base) file_header();
    std::memcpy(fh->magic, file_magic, sizeof file_magic);
    fh->version = file_version;
    fh->header_size = sizeof(scoreboard_header);
    fh->slot_size = sizeof(scoreboard_slot);
    fh->capacity = capacity;
    fh->length = l.length;
    fh->header_offset = static_cast<uint32_t>(l.header_offset);
    fh->slots_offset = static_cast<uint32_t>(l.slots_offset);
    fh->ready.store(1, std::memory_order_release);
    return sb;
}

result<scoreboard> scoreboard::create(uint32_t capacity) { return map(capacity, -1); }

result<scoreboard> scoreboard::create_file(uint32_t capacity, const std::string& path) {
    // A file left by a process of the same pid (a crash, then pid reuse) is not ours to
    // trust: replace it rather than open it.
    ::unlink(path.c_str());
    unique_fd fd(detail::retry_eintr([&] {
        return ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    }));
    if (!fd) return error::from_errno(errno, fmt::format("cannot create {}", path));
    // The umask may have taken bits away; these are the bits meant.
    if (::fchmod(fd.get(), 0640) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        return error::from_errno(err, fmt::format("cannot set the mode of {}", path));
    }
    auto sb = map(capacity, fd.get());
    if (!sb) {
        ::unlink(path.c_str());
        return error(sb.err().code, fmt::format("{}: {}", path, sb.err().message));
    }
    // The mapping keeps the file's pages; the descriptor would only leak into the workers.
    sb->path_ = path;
    sb->owner_ = ::getpid();
    return sb;
}

result<scoreboard> scoreboard::open_read_only(const std::string& path) {
    unique_fd fd(detail::retry_eintr(
        [&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY); }));
    if (!fd) return error::from_errno(errno, fmt::format("cannot open {}", path));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return error::from_errno(errno, fmt::format("{}", path));
    const auto not_ours = [&](std::string_view why) {
        return error(std::make_error_code(std::errc::invalid_argument),
                     fmt::format("{} is not a scoreboard this program can read: {}", path, why));
    };
    if (!S_ISREG(st.st_mode)) return not_ours("not a regular file");
    if (static_cast<size_t>(st.st_size) < sizeof(file_header))
        return error(std::make_error_code(std::errc::resource_unavailable_try_again),
                     fmt::format("{} is still being set up", path));
    void* base =
        ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd.get(), 0);
    if (base == MAP_FAILED) return error::from_errno(errno, fmt::format("cannot map {}", path));
    scoreboard sb;  // unmaps on every error below
    sb.base_ = base;
    sb.length_ = static_cast<size_t>(st.st_size);
    const auto* fh = static_cast<const file_header*>(base);
    if (std::memcmp(fh->magic, file_magic, sizeof file_magic) != 0) {
        if (fh->ready.load(std::memory_order_acquire) == 0 &&
            std::all_of(fh->magic, fh->magic + sizeof fh->magic, [](char c) { return c == 0; }))
            return error(std::make_error_code(std::errc::resource_unavailable_try_again),
                         fmt::format("{} is still being set up", path));
        return not_ours("no scoreboard magic");
    }
    if (fh->ready.load(std::memory_order_acquire) != 1)
        return error(std::make_error_code(std::errc::resource_unavailable_try_again),
                     fmt::format("{} is still being set up", path));
    const layout l = layout_for(fh->capacity);
    if (fh->version != file_version || fh->header_size != sizeof(scoreboard_header) ||
        fh->slot_size != sizeof(scoreboard_slot))
        return not_ours(fmt::format(
            "layout {} with {}-byte header and {}-byte slots, this program reads layout {} with "
            "{} and {} (another version of preforkd)",
            fh->version, fh->header_size, fh->slot_size, file_version, sizeof(scoreboard_header),
            sizeof(scoreboard_slot)));
    if (fh->capacity > 1u << 20 || fh->length != l.length || l.length != sb.length_ ||
        fh->header_offset != l.header_offset || fh->slots_offset != l.slots_offset)
        return not_ours("its sizes do not add up");
    char* bytes = static_cast<char*>(base);
    sb.header_ = reinterpret_cast<scoreboard_header*>(bytes + l.header_offset);
    sb.slots_ = reinterpret_cast<scoreboard_slot*>(bytes + l.slots_offset);
    if (sb.header_->capacity != fh->capacity) return not_ours("its capacity does not match");
    sb.path_ = path;  // owner_ stays 0: a reader never removes it
    return sb;
}

result<void> scoreboard::move_file(const std::string& to) {
    if (path_.empty() || owner_ != ::getpid() || to == path_) return {};
    if (::rename(path_.c_str(), to.c_str()) != 0)
        return error::from_errno(errno,
                                 fmt::format("cannot move the scoreboard {} to {}", path_, to));
    path_ = to;
    return {};
}

std::string scoreboard::file_name_for(const std::string& pid_file, pid_t supervisor_pid) {
    return (std::filesystem::path(pid_file).parent_path() /
            fmt::format("scoreboard.{}", supervisor_pid))
        .string();
}

int scoreboard::remove_stale_files(const std::string& pid_file) {
    std::filesystem::path dir = std::filesystem::path(pid_file).parent_path();
    if (dir.empty()) dir = ".";
    int removed = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        constexpr std::string_view prefix = "scoreboard.";
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = name.substr(prefix.size());
        if (!std::all_of(digits.begin(), digits.end(),
                         [](char c) { return c >= '0' && c <= '9'; }) ||
            digits.size() > 9)
            continue;
        const pid_t pid = static_cast<pid_t>(std::stol(digits));
        // Gone is gone; a live process (of whatever program: servers of other pid files may
        // share this folder) keeps its file. A recycled pid keeps a stale file until the next
        // start after that process ends: harmless, --status checks the pid inside.
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        if (::unlink(e.path().c_str()) == 0) ++removed;
    }
    return removed;
}

scoreboard::scoreboard(scoreboard&& o) noexcept
    : path_(std::move(o.path_)),
      owner_(std::exchange(o.owner_, 0)),
      base_(std::exchange(o.base_, nullptr)),
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
    // Only the creator: a worker is a fork of it and holds a copy of this object.
    if (owner_ != 0 && owner_ == ::getpid() && !path_.empty()) ::unlink(path_.c_str());
}

void scoreboard::prepare(uint32_t i, uint32_t generation, int64_t now_ms) noexcept {
    uint32_t used_now = used();
    if (i >= used_now) {
        // First use of the slots up to i: construct them (the zero page is already zeros,
        // but atomics are objects and get their lifetime started properly).
        for (uint32_t j = used_now; j <= i; ++j) new (&slots_[j]) scoreboard_slot();
        header_->high_water.store(i + 1, std::memory_order_release);
    }
    // Inside a write section: a reader that saw the slot's old counts (already folded into
    // the retired sums by release()) next to its new state would count them twice.
    write_section([&] { reset(i, generation, now_ms); });
}

void scoreboard::reset(uint32_t i, uint32_t generation, int64_t now_ms) noexcept {
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
    for (auto& r : s.responses) r.store(0, std::memory_order_relaxed);
    s.set_state(worker_state::starting);
}

void scoreboard::release(uint32_t i) noexcept {
    scoreboard_slot& s = slots_[i];
    scoreboard_header& h = *header_;
    // The worker has been reaped: its counters are final. Fold them and empty the slot in one
    // write section, so that readers see them in exactly one of the two places.
    write_section([&] {
        const traffic_counters c = s.load_counters();
        scoreboard_slot::bump(h.retired_requests, c.requests);
        scoreboard_slot::bump(h.retired_bytes, c.bytes);
        scoreboard_slot::bump(h.retired_accepted, c.accepted);
        for (size_t k = 0; k < c.responses.size(); ++k)
            scoreboard_slot::bump(h.retired_responses[k], c.responses[k]);
        scoreboard_slot::bump(h.retired_tls_handshakes, c.tls_handshakes);
        scoreboard_slot::bump(h.retired_tls_resumed, c.tls_resumed);
        scoreboard_slot::bump(h.retired_tls_failures, c.tls_failures);
        scoreboard_slot::bump(h.retired_proxy_rejected, c.proxy_rejected);
        // Zeroed here, not only by the next prepare(): folded counts never show twice.
        s.requests.store(0, std::memory_order_relaxed);
        s.bytes.store(0, std::memory_order_relaxed);
        s.accepted.store(0, std::memory_order_relaxed);
        for (auto& r : s.responses) r.store(0, std::memory_order_relaxed);
        s.tls_handshakes.store(0, std::memory_order_relaxed);
        s.tls_resumed.store(0, std::memory_order_relaxed);
        s.tls_failures.store(0, std::memory_order_relaxed);
        s.proxy_rejected.store(0, std::memory_order_relaxed);
        s.set_state(worker_state::empty);
        s.pid.store(0, std::memory_order_relaxed);
        s.connections.store(0, std::memory_order_relaxed);
    });
}

}  // namespace preforkd
