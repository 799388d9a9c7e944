// The worker pool: fork, reap, retire, watch heartbeats, scale between the spare bounds.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include <preforkd/clock.hpp>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/exit_code.hpp>

#include "supervisor/scaling.hpp"
#include "supervisor/supervisor.hpp"
#include "sys/signals.hpp"

// AddressSanitizer builds (clang says so with __has_feature, g++ with a macro) check the
// workers for leaks too: see spawn().
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PREFORKD_LEAK_CHECK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(PREFORKD_LEAK_CHECK)
#define PREFORKD_LEAK_CHECK 1
#endif
#ifdef PREFORKD_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

namespace preforkd {
namespace {

constexpr int64_t min_heartbeat_timeout_ms = 3000;  // three of the workers' 1 s beats

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("was killed by signal {}{}", sys::signal_name(WTERMSIG(status)),
                           WCOREDUMP(status) ? " (core dumped)" : "");
    return fmt::format("ended with wait status {}", status);
}

}  // namespace

generation_snapshot supervisor::snapshot(const generation& gen) const {
    generation_snapshot s;
    const int64_t now = monotonic_ms();
    for (const auto& w : workers_) {
        if (w.gen.get() != &gen) continue;
        const bool young = now - w.started_ms < crash_window_ms;
        if (!young) ++s.healthy;
        if (w.retiring) {
            ++s.retiring;
            continue;
        }
        switch (board_.slot(w.slot).get_state()) {
            case worker_state::idle: ++s.idle; break;
            case worker_state::busy: ++s.busy; break;
            // Decided to retire by itself; the tick marks its record.
            case worker_state::retiring: ++s.retiring; continue;
            default: ++s.starting; break;
        }
        if (young) ++s.young;
    }
    return s;
}

std::vector<int> supervisor::fds_to_close_in_child(const generation& gen) const {
    // What the child's own generation uses stays, whatever another generation's list says: a
    // number listed there may since have been closed and reused for one of these.
    auto keep = [&](int fd) {
        if (fd == log_.fd() || (gen.access_log && fd == gen.access_log.get())) return true;
        for (const auto& l : gen.listeners)
            if (l->fd.get() == fd) return true;
        return std::find(gen.config_fds.begin(), gen.config_fds.end(), fd) != gen.config_fds.end();
    };
    std::vector<int> fds{signals_.get()};
    auto add_generation = [&](const generation& g) {
        if (&g == &gen) return;
        for (const auto& l : g.listeners) fds.push_back(l->fd.get());
        if (g.access_log) fds.push_back(g.access_log.get());
        fds.insert(fds.end(), g.config_fds.begin(), g.config_fds.end());
    };
    if (current_) add_generation(*current_);
    if (previous_) add_generation(*previous_);
    for (const auto& w : workers_) add_generation(*w.gen);
    std::erase_if(fds, keep);
    std::sort(fds.begin(), fds.end());
    fds.erase(std::unique(fds.begin(), fds.end()), fds.end());
    return fds;
}

result<pid_t> supervisor::spawn(const std::shared_ptr<generation>& gen) {
    auto free_slot = std::find(slot_taken_.begin(), slot_taken_.end(), false);
    if (free_slot == slot_taken_.end()) {
        log_.error("cannot start a worker: no free scoreboard slot");
        return error("no free scoreboard slot");
    }
    auto slot = static_cast<uint32_t>(free_slot - slot_taken_.begin());
    int64_t now = monotonic_ms();
    board_.prepare(slot, gen->id, now);

    worker_start ws;
    ws.cfg = &gen->cfg;
    for (const auto& l : gen->listeners) ws.listeners.push_back(l->fd.get());
    ws.board = &board_;
    ws.slot = slot;
    ws.generation = gen->id;
    ws.supervisor = ::getpid();
    ws.creds = gen->creds;
    ws.error_log_fd = log_.target() == "stderr" ? -1 : log_.fd();
    ws.error_log_target = log_.target();
    const std::string& access = gen->cfg.log.access;
    ws.access_log_fd = gen->access_log ? gen->access_log.get() : (access == "stderr" ? 2 : -1);
    ws.access_log_target = access;
    ws.close_fds = fds_to_close_in_child(*gen);

    pid_t pid = ::fork();
    if (pid == 0) {
        // The child never returns into supervisor code, and never runs its destructors:
        // they would remove the pid file and close what the supervisor still uses.
        // Its own pid in its slot at once: "starting" with pid 0 reads as nobody's.
        board_.slot(slot).pid.store(::getpid(), std::memory_order_relaxed);
        if (opts_.handshake) opts_.handshake->close_in_child();
        int status = static_cast<int>(exit_code::fatal);
        try {
            status = entry_(ws);
        } catch (...) {
        }
#ifdef PREFORKD_LEAK_CHECK
        // _exit skips LeakSanitizer's at-exit check, so a worker's leaks would go unseen.
        // Check here: everything the worker made is gone with entry_'s frames, while what
        // it inherited stays reachable from the supervisor's frames below on this stack, so
        // only the worker's own losses are reported (on stderr; the exit status says so).
        if (__lsan_do_recoverable_leak_check() != 0 && status == 0)
            status = static_cast<int>(exit_code::failure);
#endif
        ::_exit(status);
    }
    if (pid < 0) {
        int err = errno;
        board_.release(slot);
        // EAGAIN (RLIMIT_NPROC, pid or cgroup limits) or ENOMEM: forking again at once fails
        // the same way. Back off, 100 ms doubling to 10 s, until a fork works again; only a
        // fork resets this count (a worker coming of age says nothing about forking).
        ++fork_failures_;
        int64_t delay = crash_backoff_ms(fork_failures_);
        fork_after_ms_ = now + delay;
        auto e = error::from_errno(err, "fork");
        log_.error("cannot start a worker: {}; retrying in {} ms", e.message, delay);
        return e;
    }
    if (fork_failures_ > 0) log_.info("fork works again after {} failure(s)", fork_failures_);
    fork_failures_ = 0;
    board_.slot(slot).pid.store(pid, std::memory_order_relaxed);
    slot_taken_[slot] = true;
    worker_record w;
    w.pid = pid;
    w.slot = slot;
    w.gen = gen;
    w.started_ms = now;
    workers_.push_back(std::move(w));
    log_.info("spawned worker {} (generation {}, slot {})", pid, gen->id, slot);
    return pid;
}

void supervisor::spawn_up_to_floor() {
    if (stopping_ != stop_mode::none || !current_) return;
    int64_t now = monotonic_ms();
    if (now < fork_after_ms_) return;
    if (previous_) {
        // A reload is not up yet: the old generation serves meanwhile, so it stays at its
        // floor. Its workers that retire by themselves (max_requests), crash or are killed by
        // the watchdog are replaced, or it would drain to nothing while the new one stalls.
        const generation_snapshot old = snapshot(*previous_);
        const int max = previous_->cfg.workers.max;
        int wanted = std::min(std::min(previous_floor_, max) - old.serving(),
                              room_under_max({old.serving(), old.idle, previous_floor_,
                                              old.retiring}, max));
        for (int i = 0; i < wanted; ++i)
            if (!spawn(previous_)) return;  // logged, and backed off if fork failed
    }
    if (now < spawn_after_ms_) return;
    const generation_snapshot cur = snapshot(*current_);
    const int max = current_->cfg.workers.max;
    int wanted = std::min(std::min(floor_, max) - cur.serving(),
                          room_under_max({cur.serving(), cur.idle, floor_, cur.retiring}, max));
    // Crash loop: one probe at a time; the rest follow once a worker stays up.
    if (crashes_ > 0) wanted = std::min(wanted, 1 - cur.young);
    for (int i = 0; i < wanted; ++i)
        if (!spawn(current_)) return;  // logged, and backed off if fork failed
}

void supervisor::reap() {
    for (;;) {
        int status = 0;
        pid_t pid = detail::retry_eintr([&] { return ::waitpid(-1, &status, WNOHANG); });
        if (pid > 0) {
            worker_exited(pid, status);
            continue;
        }
        // ECHILD: no child left at all. Our records of live workers are then wrong (the
        // kernel reaped them for us): forget them, and never signal those pids again.
        if (pid < 0 && errno == ECHILD) forget_all_workers();
        break;
    }
    if (stopping_ == stop_mode::none) spawn_up_to_floor();
}

void supervisor::forget_all_workers() {
    if (workers_.empty() && upgrade_child_ == 0) return;
    log_.error("waitpid: no child process left, yet {} worker(s) were running: they ended "
               "unseen (was SIGCHLD ignored?)", workers_.size());
    for (const auto& w : workers_) {
        board_.release(w.slot);
        slot_taken_[w.slot] = false;
    }
    workers_.clear();
    if (upgrade_child_ > 0) upgrade_child_exited(-1);
}

void supervisor::worker_exited(pid_t pid, int status) {
    const int64_t now = monotonic_ms();
    auto it = std::find_if(workers_.begin(), workers_.end(),
                           [&](const worker_record& w) { return w.pid == pid; });
    if (it == workers_.end()) {
        if (pid == upgrade_child_) upgrade_child_exited(status);
        else log_.info("reaped child {} that was not a worker: {}", pid, describe_exit(status));
        return;
    }
    worker_record w = std::move(*it);
    workers_.erase(it);
    // The worker's reason for a fatal exit: read before the slot is cleared for reuse.
    const std::string reason = board_.slot(w.slot).exit_reason;
    board_.release(w.slot);
    slot_taken_[w.slot] = false;

    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const bool fatal =
        WIFEXITED(status) && WEXITSTATUS(status) == static_cast<int>(exit_code::fatal);
    const bool stopping = stopping_ != stop_mode::none;
    const std::string how = describe_exit(status);
    if (clean && (w.retiring || stopping))
        log_.info("worker {} (generation {}, slot {}) retired", pid, w.gen->id, w.slot);
    else if (clean)
        // A QUIT sent straight to the worker, or a retirement not yet seen by the tick.
        log_.info("worker {} (generation {}, slot {}) exited normally", pid, w.gen->id, w.slot);
    else if (stopping || w.killed)
        log_.info("worker {} (generation {}, slot {}) {}", pid, w.gen->id, w.slot, how);
    else if (fatal)
        log_.error("worker {} (generation {}, slot {}) cannot work: {}", pid, w.gen->id, w.slot,
                   reason.empty() ? how : reason);
    else
        log_.error("worker {} (generation {}, slot {}) {}", pid, w.gen->id, w.slot, how);

    if (fatal && !stopping && w.gen == current_) {
        // exit_code::fatal: it cannot serve with this configuration (the docroot is gone,
        // the application's init failed), and neither will the next one. As nginx (exit 2)
        // and Apache (APEXIT_CHILDFATAL): no respawning into it.
        std::string why = fmt::format("worker {} of generation {} cannot start: {}", pid,
                                      w.gen->id,
                                      reason.empty() ? "exit_code::fatal (see its error above)"
                                                     : reason);
        if (previous_) {
            reload_failure_ = std::move(why);
            finish_reload_if_ready();
            return;
        }
        if (!ready_) {
            log_.crit("{}", why);
            if (opts_.on_start_failed) opts_.on_start_failed(why);
            exit_status_ = 1;
            begin_stop(stop_mode::fast);
            return;
        }
    }

    // Dying young is a crash loop to slow down (100 ms doubling to 10 s, one probe at a
    // time), whatever the cause. SIGKILL is the exception while the generation has a worker
    // that came of age: random kills of a healthy pool (an operator, a chaos test) must not
    // push it into back-off, down to no worker for seconds. With no such worker, workers
    // SIGKILLed at birth (the OOM killer, a cgroup's memory.max, a script) would otherwise be
    // re-forked some 150 times a second.
    const bool killed_from_outside = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    const bool young = now - w.started_ms < crash_window_ms;
    if (clean || w.killed || stopping || !young) return;
    if (killed_from_outside && snapshot(*w.gen).healthy > 0) return;
    ++crashes_;
    int64_t delay = crash_backoff_ms(crashes_);
    spawn_after_ms_ = now + delay;
    if (backoff_logged_for_ != crashes_) {
        log_.error("worker {} {} {} ms after its start ({} in a row): next spawn in {} ms", pid,
                   killed_from_outside ? "was killed" : "crashed", now - w.started_ms, crashes_,
                   delay);
        backoff_logged_for_ = crashes_;
    }
}

void supervisor::retire(worker_record& w, const char* why) {
    if (w.retiring) return;
    w.retiring = true;
    w.kill_at_ms = monotonic_ms() + w.gen->cfg.workers.graceful_timeout.count() + 1000;
    log_.info("retiring worker {} (generation {}, slot {}): {}", w.pid, w.gen->id, w.slot, why);
    send_signal(w.pid, SIGQUIT);
}

void supervisor::send_signal(pid_t pid, int signo) {
    // ESRCH is a worker that just exited (its CHLD is on the way); anything else (EPERM:
    // no CAP_KILL under a strict systemd unit) means we cannot control our workers at all.
    if (pid <= 0) return;  // never kill(0) or kill(-1): the whole group, or everyone
    if (::kill(pid, signo) != 0 && errno != ESRCH)
        log_.crit("cannot send {} to worker {}: {}", sys::signal_name(signo), pid,
                  std::strerror(errno));
}

void supervisor::signal_all(int signo) {
    for (const auto& w : workers_) send_signal(w.pid, signo);
}

void supervisor::watchdog() {
    int64_t now = monotonic_ms();
    for (auto& w : workers_) {
        if (w.killed) continue;
        int64_t beat = board_.slot(w.slot).heartbeat_ms.load(std::memory_order_relaxed);
        int64_t silent = now - beat;
        // A worker beats once a second; under load a beat can come a little late. At least
        // three beats' time, so that a healthy worker is never killed for one late beat,
        // whatever heartbeat_timeout says (its minimum, 1 s, is a single beat).
        if (silent > std::max<int64_t>(w.gen->cfg.workers.heartbeat_timeout.count(),
                                       min_heartbeat_timeout_ms)) {
            log_.error("worker {} (generation {}, slot {}) silent for {} ms: killing it", w.pid,
                       w.gen->id, w.slot, silent);
            send_signal(w.pid, SIGKILL);
            w.killed = true;
            // Not serving any more: its replacement need not wait for the reap.
            w.retiring = true;
        }
    }
}

void supervisor::scale() {
    const workers_config& wc = current_->cfg.workers;
    const generation_snapshot cur = snapshot(*current_);
    pool_snapshot p;
    p.floor = floor_;
    p.serving = cur.serving();
    // A starting worker will be idle in a moment: counting it avoids a second batch.
    p.idle = cur.idle + cur.starting;
    p.retiring = cur.retiring;
    scaling_decision d = plan_scaling(p, {wc.min_spare, wc.max_spare, wc.max}, spawn_rate_);
    spawn_rate_ = d.next_spawn_rate;
    int64_t now = monotonic_ms();
    if (d.spawn > 0 && now >= spawn_after_ms_ && now >= fork_after_ms_) {
        if (p.serving < p.floor)
            log_.info("{} worker(s) serving, under the pool floor of {}: spawning {}", p.serving,
                      p.floor, d.spawn);
        else
            log_.info("{} idle worker(s), workers.min_spare is {}: spawning {}", p.idle,
                      wc.min_spare, d.spawn);
        for (int i = 0; i < d.spawn; ++i)
            if (!spawn(current_)) break;  // logged, and backed off if fork failed
    }
    if (d.retire_idle) {
        worker_record* pick = nullptr;
        for (auto& w : workers_) {
            if (w.gen != current_ || w.retiring) continue;
            if (board_.slot(w.slot).get_state() != worker_state::idle) continue;
            if (!pick || w.slot > pick->slot) pick = &w;
        }
        if (pick) retire(*pick, "more idle workers than workers.max_spare");
    }
}

}  // namespace preforkd
