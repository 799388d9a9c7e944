#include "worker/signal_watch.hpp"

#include <signal.h>

#include "sys/signals.hpp"
#include "worker/context_access.hpp"

namespace preforkd::detail {

// The worker's column of the signal table (TERM, INT, QUIT, USR1): one list for the fork's
// mask, the signalfd and the blocking adapter's watch.
sigset_t worker_signals() noexcept { return sys::worker_blocked_signals(); }

result<void> signal_watch::open() {
    // The event loop's set: the signals a handler must not sit on.
    auto fd = sys::open_signalfd(worker_signals());
    if (!fd) return std::move(fd).err();
    fd_ = std::move(*fd);
    return {};
}

void signal_watch::drain(int64_t now_ms) noexcept {
    if (!fd_) return;
    while (auto info = sys::read_signal(fd_.get())) {
        int signo = static_cast<int>(info->ssi_signo);
        if (signo == SIGTERM || signo == SIGINT) stopping_ = true;
        if (signo == SIGQUIT) retire(now_ms);
        context_access::handle_signal(ctx_, signo);
    }
}

void signal_watch::retire(int64_t now_ms) noexcept {
    if (retire_deadline_ms_ == 0) retire_deadline_ms_ = now_ms + graceful_ms_;
}

}  // namespace preforkd::detail
