// The pool's policy: how many workers each generation should have (the floor, the spare
// bounds, workers.max), what a worker's exit means (a crash loop, a fatal configuration),
// and the back-off. The pool object (pool.cpp) carries it out.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <preforkd/clock.hpp>
#include <preforkd/exit_code.hpp>

#include "supervisor/scaling.hpp"
#include "supervisor/supervisor.hpp"
#include "sys/signals.hpp"

namespace preforkd {
namespace {

// Young workers SIGKILLed one after the other, with no worker of their generation alive past
// its first second at any of those deaths, that make a birth-killer rather than random kills
// of a healthy pool. Random kills (the chaos test: one of 4 workers every 200 ms) leave
// some worker of age alive nearly always, and never this many times in a row.
constexpr int young_kill_run = 20;

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("was killed by signal {}{}", sys::signal_name(WTERMSIG(status)),
                           WCOREDUMP(status) ? " (core dumped)" : "");
    return fmt::format("ended with wait status {}", status);
}

}  // namespace

result<pid_t> supervisor::spawn(const std::shared_ptr<generation>& gen) {
    return pool_.spawn(gen, {current_.get(), previous_.get()});
}

void supervisor::spawn_up_to_floor() {
    if (stopping_ != stop_mode::none || !current_) return;
    int64_t now = monotonic_ms();
    if (now < pool_.fork_after_ms()) return;
    if (previous_) {
        // A reload is not up yet: the old generation serves meanwhile, so it stays at its
        // floor. Its workers that retire by themselves (max_requests), crash or are killed by
        // the watchdog are replaced, or it would drain to nothing while the new one stalls.
        const generation_snapshot old = pool_.snapshot(*previous_);
        const int max = previous_->cfg.workers.max;
        int wanted =
            std::min(std::min(previous_floor_, max) - old.serving(),
                     room_under_max({old.serving(), old.idle, previous_floor_, old.retiring}, max));
        for (int i = 0; i < wanted; ++i)
            if (!spawn(previous_)) return;  // logged, and backed off if fork failed
    }
    if (now < spawn_after_ms_) return;
    const generation_snapshot cur = pool_.snapshot(*current_);
    const int max = current_->cfg.workers.max;
    int wanted = std::min(std::min(floor_, max) - cur.serving(),
                          room_under_max({cur.serving(), cur.idle, floor_, cur.retiring}, max));
    // Crash loop: one probe at a time; the rest follow once a worker stays up.
    if (crashes_ > 0) wanted = std::min(wanted, 1 - cur.young);
    for (int i = 0; i < wanted; ++i)
        if (!spawn(current_)) return;  // logged, and backed off if fork failed
}

void supervisor::reap() {
    int vanished = 0;
    for (const reaped_child& c : pool_.reap(vanished)) worker_exited(c);
    if (vanished > 0)
        log_.error(
            "waitpid: no child process left, yet {} worker(s) were running: they ended "
            "unseen (was SIGCHLD ignored?)",
            vanished);
    if (upgrade_child_ > 0 && vanished > 0) upgrade_child_exited(-1);
    if (stopping_ == stop_mode::none) spawn_up_to_floor();
}

void supervisor::worker_exited(const reaped_child& c) {
    const int64_t now = monotonic_ms();
    const pid_t pid = c.pid;
    const int status = c.status;
    if (!c.worker) {
        if (pid == upgrade_child_)
            upgrade_child_exited(status);
        else
            log_.info("reaped child {} that was not a worker: {}", pid, describe_exit(status));
        return;
    }
    const worker_record& w = c.record;
    const std::string& reason = c.reason;

    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const bool fatal =
        WIFEXITED(status) && WEXITSTATUS(status) == static_cast<int>(exit_code::fatal);
    const bool stopping = stopping_ != stop_mode::none;
    const std::string how = describe_exit(status);
    // A crash (preforkd_worker_crashes_total): a signal or an error exit nobody asked for.
    // A worker we SIGKILLed (watchdog, graceful_timeout) or stopped with the server is not.
    if (!clean && !w.killed && !stopping)
        scoreboard_slot::bump(pool_.board().header().worker_crashes, 1);
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
        std::string why =
            fmt::format("worker {} of generation {} cannot start: {}", pid, w.gen->id,
                        reason.empty() ? "exit_code::fatal (see its error above)" : reason);
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
    // time), whatever the cause. SIGKILL only counts when workers are killed at birth (the
    // OOM killer, a cgroup's memory.max, a script), which re-forked them some 150 times a
    // second: a long run of young deaths with no worker of the generation of age. Random
    // kills of a healthy pool (an operator, a chaos test) must not push it into back-off,
    // down to no worker for seconds.
    const bool killed_from_outside = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    const bool young = now - w.started_ms < crash_window_ms;
    if (clean || w.killed || stopping || !young) return;
    if (killed_from_outside && crashes_ == 0) {
        // Once backing off, every such death counts, until a worker comes of age.
        if (pool_.snapshot(*w.gen).healthy > 0) {
            young_kills_in_a_row_ = 0;
            return;
        }
        if (++young_kills_in_a_row_ < young_kill_run) return;
    }
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

void supervisor::scale() {
    const workers_config& wc = current_->cfg.workers;
    const generation_snapshot cur = pool_.snapshot(*current_);
    pool_snapshot p;
    p.floor = floor_;
    p.serving = cur.serving();
    // A starting worker will be idle in a moment: counting it avoids a second batch.
    p.idle = cur.idle + cur.starting;
    p.retiring = cur.retiring;
    scaling_decision d = plan_scaling(p, {wc.min_spare, wc.max_spare, wc.max}, spawn_rate_);
    spawn_rate_ = d.next_spawn_rate;
    int64_t now = monotonic_ms();
    if (d.spawn > 0 && now >= spawn_after_ms_ && now >= pool_.fork_after_ms()) {
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
        for (auto& w : pool_.workers()) {
            if (w.gen != current_ || w.retiring) continue;
            if (pool_.board().slot(w.slot).get_state() != worker_state::idle) continue;
            if (!pick || w.slot > pick->slot) pick = &w;
        }
        if (pick) pool_.retire(*pick, "more idle workers than workers.max_spare");
    }
}

}  // namespace preforkd
