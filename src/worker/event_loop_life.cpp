// The worker's life around its connections: its descriptor budget (and pausing accept when
// out of descriptors), heartbeat, signals, retiring (QUIT, workers.max_requests, the
// supervisor gone) and log reopening.
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <preforkd/exit_code.hpp>
#include <string>

#include "sys/signals.hpp"
#include "worker/context_access.hpp"
#include "worker/event_loop.hpp"

namespace preforkd::detail {
namespace {

constexpr int64_t accept_pause_ms = 250;  // after EMFILE and friends

}  // namespace

// A worker that takes connections until accept4 fails with EMFILE leaves the connection that
// woke it in the backlog while it pauses, and with EPOLLEXCLUSIVE no other worker was woken
// for it. So a worker takes no more connections than its descriptor limit can hold, less the
// descriptors it has already (listeners, epoll, signalfd, logs, what the service opened) and
// some headroom for those its sessions open on the way (a file being sent, a reopened log):
// full, it leaves the listeners to its peers, like any full worker, and EMFILE stays rare.
void event_loop::limit_connections_to_descriptors() noexcept {
    constexpr size_t headroom = 16;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return;
    size_t open_now = 0;
    while (const dirent* e = ::readdir(dir))
        if (e->d_name[0] != '.') ++open_now;
    ::closedir(dir);
    if (open_now > 0) --open_now;  // the listing's own descriptor
    const auto limit = static_cast<size_t>(rl.rlim_cur);
    const size_t room = limit > open_now + headroom ? limit - open_now - headroom : 1;
    if (room >= max_connections_) return;
    log_.info(
        "workers.max_connections {} lowered to {}: the descriptor limit is {} and {} are "
        "in use",
        max_connections_, room, limit, open_now);
    max_connections_ = room;
}

void event_loop::pause_accept(int err) noexcept {
    // Out of descriptors with not one connection open, before serving anything: this worker
    // can never accept (its limit is taken by what it opened at start). Pausing would leave
    // the pool looking healthy while nobody serves; a fatal exit makes the supervisor abandon
    // a reload that brought this on, or fail the start, with the reason (issue 18.2).
    if (err == EMFILE && live_.empty() && slot_.accepted.load(std::memory_order_relaxed) == 0) {
        const std::string why =
            "cannot accept a connection: the descriptor limit is reached with none open "
            "(raise workers.rlimit_nofile)";
        log_.crit("{}", why);
        slot_.set_exit_reason(why);
        exit_status_ = static_cast<int>(exit_code::fatal);
        stop_ = true;
        arm_listeners(false);
        return;
    }
    // Out of descriptors or memory: accepting again at once would spin. Step back, let
    // connections close, and say so once a minute at most.
    if (ctx_.now_ms() - last_accept_error_log_ >= 60'000 || last_accept_error_log_ == 0) {
        log_.error("accept: {} ({} connections open); pausing accept", std::strerror(err),
                   live_.size());
        last_accept_error_log_ = ctx_.now_ms();
    }
    arm_listeners(false);
    accept_resume_ = ctx_.now_ms() + accept_pause_ms;
    // Out of our own descriptors, a connection that closes frees one: accept again then, not
    // only after the pause (queued clients would wait it out).
    resume_on_close_ = err == EMFILE;
}

void event_loop::check_max_requests() noexcept {
    if (retiring_ || max_requests_ == 0 || ctx_.requests() < max_requests_) return;
    begin_retire("reached workers.max_requests");
    // "Look at the scoreboard now": the supervisor forks the replacement at once instead of
    // at its next tick. SIGURG is ignored by default, so should the pid have been recycled,
    // nobody else is hurt.
    if (::getppid() == ws_.supervisor) ::kill(ws_.supervisor, SIGURG);
}

void event_loop::heartbeat() noexcept {
    int64_t now = ctx_.now_ms();
    slot_.heartbeat_ms.store(now, std::memory_order_relaxed);
    next_beat_ = now + heartbeat_interval_ms;
    publish_tls();
    if (!retiring_ && ::getppid() != ws_.supervisor) begin_retire("the supervisor is gone");
    svc_.on_tick();
}

void event_loop::on_signals() noexcept {
    signals_in_loop_ = true;  // not inside a session: a QUIT may take the queue (see below)
    while (auto info = sys::read_signal(signals_fd_.get()))
        on_signal(static_cast<int>(info->ssi_signo));
    signals_in_loop_ = false;
}

// Also called from inside a session's on_io: a blocking handler's connection reads the
// worker's signals while the loop waits for it. begin_retire() then calls on_retire() of that
// very session, which only answers true (it is serving), so nothing is closed under it.
void event_loop::on_signal(int signo) noexcept {
    switch (signo) {
        case SIGTERM:
        case SIGINT:
            stop_ = true;
            arm_listeners(false);  // a stopping worker takes no queued client (it would drop it)
            break;
        case SIGQUIT:
            begin_retire("told to retire", signals_in_loop_);
            break;
        case SIGUSR1:
            reopen_logs();
            break;
        default:
            break;
    }
}

void event_loop::begin_retire(const char* why, bool take_queue) noexcept {
    if (retiring_) return;
    log_.debug("retiring: {} ({} connection(s) open)", why, live_.size());
    arm_listeners(false);
    retiring_ = true;
    context_access::set_retiring(ctx_);
    slot_.set_state(worker_state::retiring);
    // A QUIT (a graceful stop, or a reload) read by the loop itself: the listening sockets
    // close at the end of this turn, once what is queued on them is taken. Otherwise (inside
    // a blocking handler, max_requests, the supervisor gone) they close now.
    take_queue_ = take_queue;
    if (!take_queue) release_listeners();
    graceful_deadline_ = ctx_.now_ms() + ws_.cfg->workers.graceful_timeout.count();
    for (size_t i = live_.size(); i-- > 0;) {
        connection& c = *live_[i];
        // Still in its TLS handshake or its PROXY header: its session is told when it opens.
        if (!c.s) continue;
        settle(c, c.s->on_retire());
    }
}

// Closes our copies of the listening sockets. When the last process holding a socket lets go
// (graceful stop), the kernel refuses new connections instead of queueing them for nobody,
// and resets those still queued: so after a QUIT the queue is first taken and served (each
// gets its answer with Connection: close), which leaves only the microseconds between the
// last accept and the close for a client to be reset in (with a TLS load, one in a few QUITs
// without it). On reload the supervisor and the new generation still hold the sockets, so
// nothing is refused. A stopping worker (TERM) takes nothing: it would drop it. Taking runs
// sessions, so only at the end of a turn of the loop, never inside one. (The watch objects
// stay: an event of the current batch may still point at them.)
void event_loop::release_listeners() noexcept {
    listeners_released_ = true;
    for (auto& l : listeners_) {
        if (!l->fd) continue;
        for (size_t i = 0; take_queue_ && !stop_ && !full() && i < max_connections_; ++i)
            if (!accept_one(*l)) break;
        l->fd.reset();
    }
}

void event_loop::reopen_logs() noexcept {
    if (ws_.error_log_target != "stderr") {
        if (auto r = log_.open(ws_.error_log_target); !r) log_.error("USR1: {}", r.err().message);
    }
    if (!ws_.access_log_target.empty() && ws_.access_log_target != "stderr" &&
        ws_.access_log_target != "off") {
        auto fd = open_log_file(ws_.access_log_target);
        if (fd) {
            access_log_ = std::move(*fd);
            context_access::set_access_log_fd(ctx_, access_log_.get());
        } else {
            log_.error("USR1: {}", fd.err().message);
        }
    }
    svc_.on_reopen_logs();
    log_.debug("reopened the logs");
}

}  // namespace preforkd::detail
