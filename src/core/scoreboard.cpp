#include <sched.h>
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
