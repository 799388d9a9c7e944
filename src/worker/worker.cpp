#include "worker/worker.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include <preforkd/exit_code.hpp>

#include "sys/signals.hpp"
#include "worker/event_loop.hpp"
#include "worker/signal_watch.hpp"

namespace preforkd {
namespace {

// workers.rlimit_nofile: soft and hard alike, like nginx's worker_rlimit_nofile. Done before
// dropping privileges, so that root may raise the hard limit. A limit that cannot be had
// (EPERM: not root, no CAP_SYS_RESOURCE) is not fatal: the worker keeps what it may get.
void apply_nofile_limit(uint64_t want, logger& log) noexcept {
    if (want == 0) return;
    rlimit rl{static_cast<rlim_t>(want), static_cast<rlim_t>(want)};
    if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) return;
    int err = errno;
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    rlimit best{std::min(static_cast<rlim_t>(want), now.rlim_max), now.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &best) == 0) now = best;
    log.error("workers.rlimit_nofile {}: {}; the worker runs with {}", want, std::strerror(err),
              static_cast<uint64_t>(now.rlim_cur));
}

}  // namespace

int run_worker(worker_start& ws, const application& app) noexcept {
    for (int fd : ws.close_fds) ::close(fd);
    // Ignored: SIGPIPE, since a peer that hangs up makes writes fail with EPIPE, which
    // sessions handle, while the default would kill the worker and every connection it
    // holds; and job-control and supervisor-only signals reaching the whole process group (a
    // shell's `kill -TTIN -PGID`, a terminal hang-up), which are the supervisor's business.
    // Blocked: the worker's own signals, from the fork (the supervisor's mask blocks them)
    // until the event loop's signalfd reads them. Unblocked in between, a USR1 (the
    // supervisor's log reopening) would kill a worker still starting, a QUIT (a retire, or
    // the PDEATHSIG below) dump its core, and both would count as crashes.
    // Both sets come from the signal table (sys/signals.hpp).
    const sigset_t blocked = sys::worker_blocked_signals();
    const sigset_t ignored = sys::worker_ignored_signals();
    sys::reset_signal_state(&ignored, &blocked);

    const config& cfg = *ws.cfg;
    logger log("worker", cfg.log.level);
    if (ws.error_log_fd > 2) log.adopt(unique_fd(ws.error_log_fd), ws.error_log_target);

    apply_nofile_limit(cfg.workers.rlimit_nofile, log);
    if (auto r = sys::drop_privileges(ws.creds); !r) {
        log.crit("cannot run as {}:{}: {}", ws.creds.user, ws.creds.group, r.err().message);
        return static_cast<int>(exit_code::fatal);
    }
    // If the supervisor dies, finish what is in flight and go, rather than linger serving
    // with nobody to respawn or reload. Set after the privilege drop: a uid change clears
    // it. Then the parent is checked again: it may have died before the signal was armed.
    ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (::getppid() != ws.supervisor) return static_cast<int>(exit_code::ok);

    worker_context ctx(cfg, log, *ws.board, ws.slot,
                       cfg.log.access == "off" ? -1 : ws.access_log_fd);
    std::unique_ptr<service> svc;
    try {
        svc = app.make_service(ctx);
    } catch (const std::exception& e) {
        log.crit("cannot start the service: {}", e.what());
        return static_cast<int>(exit_code::fatal);
    }
    if (!svc) {
        log.crit("cannot start the service");
        return static_cast<int>(exit_code::fatal);
    }
    detail::event_loop loop(ws, ctx, log, *svc);
    int status = loop.run();
    return status;
}

}  // namespace preforkd
