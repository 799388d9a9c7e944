// The worker pool: fork, reap, retire, watch heartbeats, scale between the spare bounds.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include <preforkd/clock.hpp>
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

constexpr int64_t crash_window_ms = 1000;  // dying sooner after start counts as a crash

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return fmt::format("was killed by signal {}{}", sys::signal_name(WTERMSIG(status)),
                           WCOREDUMP(status) ? " (core dumped)" : "");
    return fmt::format("ended with wait status {}", status);
}

}  // namespace

int supervisor::serving_count() const {
    int n = 0;
    for (const auto& w : workers_)
        if (w.gen == current_ && !w.retiring) ++n;
    return n;
}

std::vector<int> supervisor::fds_to_close_in_child(const generation& gen) const {
    std::vector<int> fds{signals_.get()};
    auto keep = [&](int fd) {
        for (const auto& l : gen.listeners)
            if (l->fd.get() == fd) return true;
        return false;
    };
    auto add_generation = [&](const generation& g) {
        for (const auto& l : g.listeners)
            if (!keep(l->fd.get())) fds.push_back(l->fd.get());
        if (&g != &gen && g.access_log) fds.push_back(g.access_log.get());
    };
    if (current_) add_generation(*current_);
    if (previous_) add_generation(*previous_);
    for (const auto& w : workers_) add_generation(*w.gen);
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
        spawn_after_ms_ = std::max(spawn_after_ms_, now + delay);
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
    if (now < spawn_after_ms_) return;
    int serving = serving_count();
    int wanted = std::min(floor_, current_->cfg.workers.max) - serving;
    if (crashes_ > 0) {
        // Crash loop: one probe at a time; the rest follow once a worker stays up.
        int probing = 0;
        for (const auto& w : workers_)
            if (w.gen == current_ && !w.retiring && !w.healthy) ++probing;
        wanted = std::min(wanted, 1 - probing);
    }
    for (int i = 0; i < wanted; ++i)
        if (!spawn(current_)) return;  // logged, and backed off if fork failed
}

void supervisor::reap() {
    int64_t now = monotonic_ms();
    for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        auto it = std::find_if(workers_.begin(), workers_.end(),
                               [&](const worker_record& w) { return w.pid == pid; });
        if (it == workers_.end()) {
            if (pid == upgrade_child_) upgrade_child_exited(status);
            else log_.info("reaped child {} that was not a worker: {}", pid, describe_exit(status));
            continue;
        }
        worker_record w = std::move(*it);
        workers_.erase(it);
        board_.release(w.slot);
        slot_taken_[w.slot] = false;

        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        std::string how = describe_exit(status);
        if (clean && (w.retiring || stopping_ != stop_mode::none))
            log_.info("worker {} (generation {}, slot {}) retired", pid, w.gen->id, w.slot);
        else if (stopping_ != stop_mode::none || w.killed)
            log_.info("worker {} (generation {}, slot {}) {}", pid, w.gen->id, w.slot, how);
        else
            log_.error("worker {} (generation {}, slot {}) {}", pid, w.gen->id, w.slot, how);

        // SIGKILL is never self-inflicted: an operator, the OOM killer or our watchdog sent
        // it. Counting it would let anyone who kills young workers (a chaos test, a script
        // replacing them) push the pool into crash back-off, down to no worker for seconds.
        // A crash loop is a worker failing by itself: an exit status or a fault.
        bool killed_from_outside = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        if (!clean && !w.killed && !killed_from_outside && stopping_ == stop_mode::none &&
            now - w.started_ms < crash_window_ms) {
            ++crashes_;
            int64_t delay = crash_backoff_ms(crashes_);
            spawn_after_ms_ = now + delay;
            if (backoff_logged_for_ != crashes_) {
                log_.error("worker {} crashed {} ms after its start ({} in a row): next spawn in "
                           "{} ms", pid, now - w.started_ms, crashes_, delay);
                backoff_logged_for_ = crashes_;
            }
        }
    }
    if (stopping_ == stop_mode::none) spawn_up_to_floor();
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
        if (silent > w.gen->cfg.workers.heartbeat_timeout.count()) {
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
    pool_snapshot p;
    p.floor = floor_;
    for (const auto& w : workers_) {
        if (w.gen != current_ || w.retiring) continue;
        ++p.serving;
        auto st = board_.slot(w.slot).get_state();
        // A starting worker will be idle in a moment: counting it avoids a second batch.
        if (st == worker_state::idle || st == worker_state::starting) ++p.idle;
    }
    scaling_decision d = plan_scaling(p, {wc.min_spare, wc.max_spare, wc.max}, spawn_rate_);
    spawn_rate_ = d.next_spawn_rate;
    if (d.spawn > 0 && monotonic_ms() >= spawn_after_ms_) {
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
