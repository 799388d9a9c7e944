// The worker pool's mechanics: fork, reap, retire, watch heartbeats.
#include "supervisor/pool.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <preforkd/clock.hpp>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/exit_code.hpp>

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

constexpr int64_t tick_ms = 1000;

}  // namespace

std::vector<int> open_descriptors() {
    std::vector<int> fds;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        int fd = std::atoi(e.path().filename().c_str());
        if (fd > 2) fds.push_back(fd);
    }
    // The listing's own descriptor was among them: keep only those still open.
    std::erase_if(fds, [](int fd) { return ::fcntl(fd, F_GETFD) < 0; });
    std::sort(fds.begin(), fds.end());
    return fds;
}

result<void> worker_pool::create_board(uint32_t capacity, const std::string& pid_file) {
    auto board = scoreboard::create(capacity);
    if (!pid_file.empty()) {
        // A file, so that `--status` can read it from outside; without one the server
        // serves all the same, only --status cannot see it.
        if (int n = scoreboard::remove_stale_files(pid_file); n > 0)
            log_.info("removed {} stale scoreboard file(s) beside {}", n, pid_file);
        auto file =
            scoreboard::create_file(capacity, scoreboard::file_name_for(pid_file, ::getpid()));
        if (file)
            board = std::move(file);
        else
            log_.warn("{}; --status will not see this server", file.err().message);
    }
    if (!board) return std::move(board).err();
    board_ = std::move(*board);
    slot_taken_.assign(board_.capacity(), false);
    return {};
}

generation_snapshot worker_pool::snapshot(const generation& gen) const {
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
            case worker_state::idle:
                ++s.idle;
                break;
            case worker_state::busy:
                ++s.busy;
                break;
            // Decided to retire by itself; the tick marks its record.
            case worker_state::retiring:
                ++s.retiring;
                continue;
            default:
                ++s.starting;
                break;
        }
        if (young) ++s.young;
    }
    return s;
}

std::vector<int> worker_pool::fds_to_close_in_child(
    const generation& gen, const std::vector<const generation*>& others) const {
    // What the child's own generation uses stays, whatever another generation's list says: a
    // number listed there may since have been closed and reused for one of these.
    auto keep = [&](int fd) {
        if (fd == log_.fd() || (gen.access_log && fd == gen.access_log.get())) return true;
        for (const auto& l : gen.listeners)
            if (l->fd.get() == fd) return true;
        return std::find(gen.config_fds.begin(), gen.config_fds.end(), fd) != gen.config_fds.end();
    };
    std::vector<int> fds{signal_fd_};
    auto add_generation = [&](const generation& g) {
        if (&g == &gen) return;
        for (const auto& l : g.listeners) fds.push_back(l->fd.get());
        if (g.access_log) fds.push_back(g.access_log.get());
        fds.insert(fds.end(), g.config_fds.begin(), g.config_fds.end());
    };
    for (const generation* g : others)
        if (g) add_generation(*g);
    for (const auto& w : workers_) add_generation(*w.gen);
    std::erase_if(fds, keep);
    std::sort(fds.begin(), fds.end());
    fds.erase(std::unique(fds.begin(), fds.end()), fds.end());
    return fds;
}

result<pid_t> worker_pool::spawn(const std::shared_ptr<generation>& gen,
                                 const std::vector<const generation*>& others) {
    int64_t now = monotonic_ms();
    if (now < fork_after_ms_) return error("fork is backing off");
    auto free_slot = std::find(slot_taken_.begin(), slot_taken_.end(), false);
    if (free_slot == slot_taken_.end()) {
        log_.error("cannot start a worker: no free scoreboard slot");
        return error("no free scoreboard slot");
    }
    auto slot = static_cast<uint32_t>(free_slot - slot_taken_.begin());
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
    ws.close_fds = fds_to_close_in_child(*gen, others);
    ws.tls_ctx = gen->tls ? gen->tls->context.get() : nullptr;

    pid_t pid = ::fork();
    if (pid == 0) {
        // The child never returns into supervisor code, and never runs its destructors:
        // they would remove the pid file and close what the supervisor still uses.
        // Its own pid in its slot at once: "starting" with pid 0 reads as nobody's.
        board_.slot(slot).pid.store(::getpid(), std::memory_order_relaxed);
        if (handshake_) handshake_->close_in_child();
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
        scoreboard_slot::bump(board_.header().fork_failures, 1);  // preforkd_fork_failures_total
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

std::vector<reaped_child> worker_pool::reap(int& vanished) {
    std::vector<reaped_child> out;
    vanished = 0;
    for (;;) {
        int status = 0;
        pid_t pid = detail::retry_eintr([&] { return ::waitpid(-1, &status, WNOHANG); });
        if (pid < 0 && errno == ECHILD && !workers_.empty()) {
            // No child left at all: our records of live workers are wrong (the kernel reaped
            // them for us). Forget them, and never signal those pids again.
            vanished = static_cast<int>(workers_.size());
            for (const auto& w : workers_) {
                board_.release(w.slot);
                slot_taken_[w.slot] = false;
            }
            workers_.clear();
        }
        if (pid <= 0) break;
        reaped_child c;
        c.pid = pid;
        c.status = status;
        auto it = std::find_if(workers_.begin(), workers_.end(),
                               [&](const worker_record& w) { return w.pid == pid; });
        if (it != workers_.end()) {
            c.worker = true;
            c.record = std::move(*it);
            workers_.erase(it);
            // The worker's reason for a fatal exit: read before the slot is cleared for reuse.
            c.reason = board_.slot(c.record.slot).exit_reason;
            board_.release(c.record.slot);
            slot_taken_[c.record.slot] = false;
        }
        out.push_back(std::move(c));
    }
    return out;
}

void worker_pool::retire(worker_record& w, const char* why) {
    if (w.retiring) return;
    w.retiring = true;
    w.kill_at_ms = monotonic_ms() + w.gen->cfg.workers.graceful_timeout.count() + 1000;
    log_.info("retiring worker {} (generation {}, slot {}): {}", w.pid, w.gen->id, w.slot, why);
    send_signal(w.pid, SIGQUIT);
}

void worker_pool::send_signal(pid_t pid, int signo) {
    // ESRCH is a worker that just exited (its CHLD is on the way); anything else (EPERM:
    // no CAP_KILL under a strict systemd unit) means we cannot control our workers at all.
    if (pid <= 0) return;  // never kill(0) or kill(-1): the whole group, or everyone
    if (::kill(pid, signo) != 0 && errno != ESRCH)
        log_.crit("cannot send {} to worker {}: {}", sys::signal_name(signo), pid,
                  std::strerror(errno));
}

void worker_pool::signal_all(int signo) {
    for (const auto& w : workers_) send_signal(w.pid, signo);
}

int worker_pool::tick(int64_t now, const generation* gen) {
    int came_of_age = 0;
    for (auto& w : workers_) {
        scoreboard_slot& s = board_.slot(w.slot);
        if (!w.retiring && s.get_state() == worker_state::retiring) {
            // It decided to retire (max_requests, lost parent): replace it now, before it leaves.
            w.retiring = true;
            w.kill_at_ms = now + w.gen->cfg.workers.graceful_timeout.count() + tick_ms;
            log_.info("worker {} (slot {}) retires after {} requests", w.pid, w.slot,
                      s.requests.load(std::memory_order_relaxed));
        }
        if (!w.healthy && now - w.started_ms >= crash_window_ms) {
            w.healthy = true;
            if (w.gen.get() == gen) ++came_of_age;
        }
        if (w.retiring && !w.killed && w.kill_at_ms != 0 && now >= w.kill_at_ms) {
            log_.warn("worker {} still running {} ms after graceful_timeout: killing it", w.pid,
                      now - w.kill_at_ms + tick_ms);
            send_signal(w.pid, SIGKILL);
            w.killed = true;
        }
    }
    return came_of_age;
}

void worker_pool::watchdog(int64_t now) {
    for (auto& w : workers_) {
        if (w.killed) continue;
        int64_t beat = board_.slot(w.slot).heartbeat_ms.load(std::memory_order_relaxed);
        int64_t silent = now - beat;
        // A worker beats once a second; under load a beat can come a little late, so the
        // configuration refuses a heartbeat_timeout under three beats (config.cpp).
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

bool worker_pool::kill_all_remaining() {
    bool any = false;
    for (auto& w : workers_) {
        if (w.killed) continue;
        log_.warn("worker {} did not stop in time: killing it", w.pid);
        send_signal(w.pid, SIGKILL);
        w.killed = true;
        any = true;
    }
    return any;
}

}  // namespace preforkd
