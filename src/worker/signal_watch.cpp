#include "worker/signal_watch.hpp"

#include <signal.h>

#include "sys/signals.hpp"
#include "worker/context_access.hpp"

namespace preforkd::detail {

sigset_t worker_signals() noexcept {
    // INT too: Ctrl-C reaches the whole foreground group, and the supervisor stops anyway.
    return sys::make_sigset({SIGTERM, SIGINT, SIGQUIT, SIGUSR1});
}

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
