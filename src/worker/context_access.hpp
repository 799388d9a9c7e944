// The worker's side of worker_context and session: what the event loop (and tests driving a
// session by hand) may set, kept out of the public classes.
#pragma once

#include <cstdint>
#include <preforkd/service.hpp>

namespace preforkd::detail {

// How a worker acts on its signals: TERM and INT stop it, QUIT retires it (its listening
// sockets close at once), USR1 reopens its logs. The worker's event loop reads them from a
// signalfd and implements this; a session that blocks the loop (the blocking adapter) reads
// them itself while it waits and hands each one over at once (context_access::handle_signal).
class signal_handler {
  public:
    virtual void on_signal(int signo) noexcept = 0;

  protected:
    ~signal_handler() = default;
};

struct context_access {
    static void set_now_ms(worker_context& c, int64_t now) noexcept { c.now_ms_ = now; }
    static void set_retiring(worker_context& c) noexcept { c.retiring_ = true; }
    static void set_access_log_fd(worker_context& c, int fd) noexcept { c.access_fd_ = fd; }
    static void set_signal_handler(worker_context& c, signal_handler* h) noexcept {
        c.signal_handler_ = h;
    }
    // Acts on `signo` now, as the worker's loop does when it reads it (see signal_handler);
    // nothing happens without a loop (a session driven by hand in a test).
    static void handle_signal(worker_context& c, int signo) noexcept {
        if (c.signal_handler_) c.signal_handler_->on_signal(signo);
    }
    // workers.max_requests with the worker's jitter (0 = never).
    static void set_max_requests(worker_context& c, uint64_t n) noexcept { c.max_requests_ = n; }
    // The worker has served its workers.max_requests: it retires.
    static bool max_requests_reached(const worker_context& c) noexcept {
        return c.max_requests_ != 0 && c.requests_ >= c.max_requests_;
    }
};

struct session_access {
    // A deadline left in the past by on_deadline() is dropped (see event_loop::run_timers).
    static void clear_deadline(session& s) noexcept { s.deadline_ms_ = 0; }
};

}  // namespace preforkd::detail
