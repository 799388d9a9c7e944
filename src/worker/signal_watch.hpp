// The worker's signals, seen from inside a blocking handler. The event loop reads TERM, INT,
// QUIT and USR1 from its signalfd, but it does not run while a handler blocks: this second
// signalfd on the same signals lets the connection helpers notice them in their poll(). A
// signal read here is gone from the loop's signalfd, so the watch hands each one to the
// loop's handling at once (context_access::handle_signal): QUIT closes the listening sockets
// then and there, USR1 reopens the logs, TERM marks the loop to stop when the handler returns.
#pragma once

#include <signal.h>

#include <cstdint>
#include <preforkd/result.hpp>
#include <preforkd/service.hpp>
#include <preforkd/unique_fd.hpp>

namespace preforkd::detail {

// The signals a worker acts on (TERM, INT, QUIT, USR1), read from a signalfd by its loop and
// by a blocking handler's watch. They stay blocked from the fork on (run_worker), so one that
// arrives while the worker starts (privilege drop, make_service) waits in the signalfd
// instead of meeting its default action: USR1 would kill the worker, QUIT dump its core.
sigset_t worker_signals() noexcept;

class signal_watch {
  public:
    // `graceful_ms`: how long a retiring handler may go on (workers.graceful_timeout).
    signal_watch(worker_context& ctx, int64_t graceful_ms) noexcept
        : ctx_(ctx), graceful_ms_(graceful_ms) {}

    // Blocks the signals (the loop blocks the same ones) and opens the signalfd.
    result<void> open();
    int fd() const noexcept { return fd_.get(); }

    // Reads every pending signal, notes TERM/INT (stopping) and QUIT (retiring), and hands
    // each to the worker's loop.
    void drain(int64_t now_ms) noexcept;
    // The worker is retiring: a handler's calls time out at now + graceful_ms (once).
    void retire(int64_t now_ms) noexcept;

    bool stopping() const noexcept { return stopping_; }
    bool retiring() const noexcept { return retire_deadline_ms_ != 0; }
    // Monotonic ms after which a retiring handler's calls time out; 0 = not retiring.
    int64_t retire_deadline_ms() const noexcept { return retire_deadline_ms_; }

  private:
    worker_context& ctx_;
    int64_t graceful_ms_;
    unique_fd fd_;
    bool stopping_ = false;
    int64_t retire_deadline_ms_ = 0;
};

}  // namespace preforkd::detail
