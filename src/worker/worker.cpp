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
#include <string>

#include "sys/signals.hpp"
#include "worker/event_loop.hpp"
#include "worker/signal_watch.hpp"

namespace preforkd {
namespace {

// workers.rlimit_nofile: soft and hard alike, like nginx's worker_rlimit_nofile. Done before
// dropping privileges, so that root may raise the hard limit. A limit that cannot be had
// (EPERM: not root, no CAP_SYS_RESOURCE) is not fatal: the worker keeps what it may get.
// 0 (the default) = automatic: the soft limit is raised, within the hard limit (no privilege
// needed), to what max_connections wants: one descriptor per connection, one more per file
// being sent, and some of the worker's own. A shell's soft limit of 1024 would otherwise
// lower the 512 connections of the default (the event loop fits them to the limit).
void apply_nofile_limit(uint64_t want, uint64_t max_connections, logger& log) noexcept {
    if (want == 0) {
        rlimit now{};
        if (::getrlimit(RLIMIT_NOFILE, &now) != 0) return;
        const auto wanted = static_cast<rlim_t>(nofile_for_connections(max_connections));
        if (now.rlim_cur == RLIM_INFINITY || now.rlim_cur >= wanted) return;
        rlimit raised{std::min(wanted, now.rlim_max), now.rlim_max};
        if (raised.rlim_cur > now.rlim_cur) ::setrlimit(RLIMIT_NOFILE, &raised);
        if (raised.rlim_cur < wanted)
            log.warn(
                "the descriptor limit {} (hard) is below the {} that {} connections want; "
                "set workers.rlimit_nofile or LimitNOFILE=",
                static_cast<uint64_t>(now.rlim_max), static_cast<uint64_t>(wanted),
                max_connections);
        return;
    }
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

// A worker that cannot serve at all exits with exit_code::fatal, and says why twice: in the
// error log, and in its scoreboard slot, which the supervisor reads after reaping it (to
// abandon a reload, or to exit at first start with this reason).
int fatal_exit(worker_start& ws, logger& log, const std::string& why) noexcept {
    log.crit("{}", why);
    ws.board->slot(ws.slot).set_exit_reason(why);
    return static_cast<int>(exit_code::fatal);
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

    apply_nofile_limit(cfg.workers.rlimit_nofile,
                       static_cast<uint64_t>(std::max(1, cfg.workers.max_connections)), log);
    if (auto r = sys::drop_privileges(ws.creds); !r)
        return fatal_exit(
            ws, log,
            fmt::format("cannot run as {}:{}: {}", ws.creds.user, ws.creds.group, r.err().message));
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
        return fatal_exit(ws, log, fmt::format("cannot start the service: {}", e.what()));
    } catch (...) {
        return fatal_exit(ws, log, "cannot start the service: it threw");
    }
    // The service has logged its own reason (a crit line) before returning nothing.
    if (!svc) return fatal_exit(ws, log, "cannot start the service (see the lines before)");
    detail::event_loop loop(ws, ctx, log, *svc);
    return loop.run();  // a fatal exit there has written its reason to the slot too
}

}  // namespace preforkd
