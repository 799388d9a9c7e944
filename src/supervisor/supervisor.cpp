// The supervisor's loop: wait for a signal or the next tick, act, repeat. Signals are read
// from a signalfd, so the "handlers" below are ordinary code.
#include "supervisor/supervisor.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <preforkd/clock.hpp>

#include "sys/pid_file.hpp"
#include "sys/signals.hpp"
#include "sys/systemd.hpp"

namespace preforkd {
namespace {

constexpr int64_t tick_ms = 1000;
constexpr int64_t fast_stop_grace_ms = 5000;  // TERM, then KILL after this
constexpr int64_t startup_patience_ms = 10'000;

std::string describe_listeners(const listener_list& ls) {
    std::string s;
    for (const auto& l : ls) {
        if (!s.empty()) s += ", ";
        s += l->addr.to_string() + l->addr.flags_string();  // "*:443 tls" as the start saw it
        if (l->origin == sys::socket_origin::upgrade) s += " (inherited)";
        if (l->origin == sys::socket_origin::systemd) s += " (from systemd)";
    }
    return s;
}

}  // namespace

supervisor::supervisor(config cfg, std::function<result<config>()> load, worker_entry entry,
                       logger& log, supervisor_options opts)
    : boot_cfg_(std::move(cfg)),
      load_(std::move(load)),
      entry_(std::move(entry)),
      log_(log),
      opts_(std::move(opts)),
      pool_(log, entry_, opts_.handshake) {}

supervisor::~supervisor() = default;

result<void> supervisor::start() {
    // Session ticket keys handed over by the supervisor we replace (USR2): read and closed
    // before the descriptors are counted as the first generation's.
    tickets_.take_inherited();
    // What is open now, besides the error log and the sockets handed to us, was opened by
    // loading the first configuration (an application's descriptors): the first generation's.
    std::vector<int> boot_fds = open_descriptors();
    std::erase_if(boot_fds, [&](int fd) {
        if (fd == log_.fd()) return true;
        for (const auto& [addr, s] : opts_.inherited.sockets)
            if (s == fd) return true;
        return false;
    });
    // The signal table's supervisor set (sys/signals.hpp). Each goes back to SIG_DFL first:
    // a SIGCHLD ignored by whoever started us would make the kernel reap our workers itself.
    auto sigs = sys::open_signalfd(sys::supervisor_signals());
    if (!sigs) return std::move(sigs).err();
    signals_ = std::move(*sigs);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, nullptr);
    // Started by an older supervisor's USR2: it is our parent for as long as it runs.
    if (opts_.inherited.upgrade) upgrade_parent_ = ::getppid();

    if (auto r = pool_.create_board(max_workers_limit, boot_cfg_.server.pid_file); !r) return r;
    pool_.set_signal_fd(signals_.get());
    start_ms_ = monotonic_ms();
    pool_.board().header().supervisor_pid.store(::getpid());
    pool_.board().header().started_wall_ms.store(wall_ms());
    pool_.board().header().started_ms.store(start_ms_);

    for (const auto& w : opts_.inherited.warnings) log_.warn("{}", w);
    auto gen = make_generation(std::move(boot_cfg_), 1, std::move(boot_fds));
    if (!gen) return std::move(gen).err();
    current_ = std::move(*gen);
    for (const auto& [addr, fd] : opts_.inherited.sockets) {
        // Handed to us but not in server.listen: serving it would surprise; say so and let go.
        log_.warn("inherited socket {} (fd {}) is not in server.listen: closed", addr, fd);
        ::close(fd);
    }
    opts_.inherited.sockets.clear();
    pool_.board().header().generation.store(current_->id);
    floor_ = current_->cfg.workers.start;
    share_board_with(current_->creds);

    std::string who = ::geteuid() == 0
                          ? fmt::format("{}:{}", current_->creds.user, current_->creds.group)
                          : "the supervisor's user";
    log_.info("preforkd {} starting: {} worker(s) on {}, workers run as {}", PREFORKD_VERSION,
              floor_, describe_listeners(current_->listeners), who);
    if (::geteuid() == 0 && current_->creds.uid == 0)
        log_.warn("server.user is root: workers keep every privilege of root");
    spawn_up_to_floor();
    next_tick_ms_ = monotonic_ms() + tick_ms;
    return {};
}

int supervisor::run() {
    if (auto r = start(); !r) {
        log_.crit("{}", r.err().message);
        if (opts_.on_start_failed) opts_.on_start_failed(r.err().message);
        pool_.signal_all(SIGKILL);
        return 1;
    }
    for (;;) {
        int64_t now = monotonic_ms();
        int64_t wake = next_wakeup_ms();
        if (drain_until_ms_ != 0) wake = std::min(wake, drain_until_ms_);
        wait_for_signals(static_cast<int>(std::clamp<int64_t>(wake - now, 0, tick_ms)));
        now = monotonic_ms();
        if (stopping_ != stop_mode::none) {
            reap();
            if (pool_.empty()) break;
            if (now >= stop_deadline_ms_) {
                // Retiring workers had graceful_timeout; TERMed ones 5 s. Whoever is left is stuck.
                pool_.kill_all_remaining();
                stop_deadline_ms_ = now + fast_stop_grace_ms;
            }
            continue;
        }
        if (drain_until_ms_ != 0 && now >= drain_until_ms_) {
            log_.info("shutdown_delay over: stopping as QUIT does");
            begin_stop(stop_mode::graceful);
            continue;
        }
        if (now >= next_tick_ms_) tick();
        spawn_up_to_floor();
        if (!ready_) check_ready();
        if (previous_) finish_reload_if_ready();
    }
    finish_stop();
    return exit_status_;
}

int64_t supervisor::next_wakeup_ms() const {
    int64_t now = monotonic_ms();
    if (stopping_ != stop_mode::none) return std::min(stop_deadline_ms_, now + 100);
    // Watching workers come up: look often (bounded: a start or a reload gives up in time).
    if (!ready_ || previous_) return now + 10;
    int64_t t = next_tick_ms_;
    if (spawn_after_ms_ > now) t = std::min(t, spawn_after_ms_);
    if (pool_.fork_after_ms() > now) t = std::min(t, pool_.fork_after_ms());
    return t;
}

void supervisor::wait_for_signals(int timeout_ms) {
    pollfd p{signals_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, timeout_ms);
    if (n <= 0) return;  // timeout or EINTR: the caller's checks run anyway
    while (auto info = sys::read_signal(signals_.get()))
        handle_signal(static_cast<int>(info->ssi_signo), static_cast<pid_t>(info->ssi_pid));
}

void supervisor::handle_signal(int signo, pid_t sender) {
    using action = sys::supervisor_action;
    const action what = sys::supervisor_action_for(signo);
    if (what != action::reap && what != action::look_now)
        log_.info("received {} from pid {}", sys::signal_name(signo), sender);
    // Stopping, only the stop itself and reaping still mean something: a TTIN would start a
    // worker that gets no QUIT and no listener. (A signalfd hands pending signals over by
    // number, so a TTIN sent just before a QUIT is read after it.)
    const bool stopping = stopping_ != stop_mode::none;
    switch (what) {
        case action::reap:
            reap();
            break;
        case action::fast_stop:
            if (signo == SIGTERM && !stopping && begin_drain()) break;
            begin_stop(stop_mode::fast);
            break;
        case action::graceful_stop:
            begin_stop(stop_mode::graceful);
            break;
        case action::reload:
            if (stopping) break;
            if (previous_) {
                // The last reload is still bringing its generation up: run this one after it,
                // not beside it.
                reload_queued_ = true;
                log_.info("reload queued: generation {} is still starting", current_->id);
            } else {
                reload();
            }
            break;
        case action::reopen_logs:
            reopen_logs();
            break;
        case action::more_workers:
        case action::fewer_workers:
            if (!stopping) adjust_floor(what == action::more_workers ? +1 : -1);
            break;
        case action::look_now:
            if (!stopping) tick();
            break;
        case action::upgrade:
            if (!stopping) begin_upgrade();
            break;
        case action::none:
            break;
    }
}

void supervisor::tick() {
    int64_t now = monotonic_ms();
    next_tick_ms_ = now + tick_ms;
    // Only the current generation's workers speak for its configuration: a worker of the
    // previous one coming of age while a reload crash-loops proves nothing, and would restart
    // the back-off from 100 ms.
    if (pool_.tick(now, current_.get()) > 0) {
        if (crashes_ > 0)
            log_.info("a worker of generation {} is up: crash back-off cleared", current_->id);
        crashes_ = 0;
        young_kills_in_a_row_ = 0;
        backoff_logged_for_ = -1;
    }
    pool_.watchdog(now);
    // Ticket keys age out: a new one at most every 12 h (the function keeps the interval).
    if (tls::ticket_key_ring* ring = tickets_.mapped())
        tls::rotate_ticket_keys(*ring, now / 1000, false);
    if (ready_ && !previous_) scale();
    spawn_up_to_floor();
}

void supervisor::check_ready() {
    const int up = pool_.snapshot(*current_).up();
    int64_t waited = monotonic_ms() - start_ms_;
    if (up < floor_ && !(up > 0 && waited >= 5000)) {
        if (up == 0 && waited >= startup_patience_ms) {
            std::string msg = fmt::format("no worker came up within {} s (see the error log {})",
                                          startup_patience_ms / 1000, log_.target());
            log_.crit("{}", msg);
            if (opts_.on_start_failed) opts_.on_start_failed(msg);
            exit_status_ = 1;
            begin_stop(stop_mode::fast);
        }
        return;
    }
    ready_ = true;
    const std::string& pid_file = current_->cfg.server.pid_file;
    if (!pid_file.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(pid_file).parent_path(), ec);
        if (auto r = sys::write_pid_file(pid_file, ::getpid()); !r) {
            log_.crit("{}", r.err().message);
            if (opts_.on_start_failed) opts_.on_start_failed(r.err().message);
            exit_status_ = 1;
            begin_stop(stop_mode::fast);
            return;
        }
        pid_file_written_ = true;
    }
    log_.info("ready: {} worker(s) of generation {} serving", up, current_->id);
    sys::notify(fmt::format("READY=1\nSTATUS=generation {}, {} worker(s)", current_->id, up));
    if (opts_.on_ready) opts_.on_ready();
}

// TERM with server.shutdown_delay: the balancer must see the health check fail before the
// listeners close, so the workers keep accepting and serving while /healthz answers 503.
// A second TERM during the delay stops at once (as QUIT). False: no delay configured.
bool supervisor::begin_drain() {
    if (drain_until_ms_ != 0) {
        drain_until_ms_ = 0;
        begin_stop(stop_mode::graceful);
        return true;
    }
    if (!current_ || current_->cfg.server.shutdown_delay.count() <= 0) return false;
    const int64_t delay = current_->cfg.server.shutdown_delay.count();
    drain_until_ms_ = monotonic_ms() + delay;
    pool_.board().header().draining.store(1, std::memory_order_relaxed);
    log_.info("draining: health answers 503; serving for {} ms before a graceful stop", delay);
    return true;
}

void supervisor::begin_stop(stop_mode mode) {
    int64_t now = monotonic_ms();
    if (pool_.board().capacity() > 0)
        pool_.board().header().draining.store(1, std::memory_order_relaxed);
    if (stopping_ == stop_mode::fast) return;
    if (mode == stop_mode::graceful && stopping_ == stop_mode::graceful) return;
    stopping_ = mode;
    if (upgrade_child_ > 0 && mode == stop_mode::graceful) {
        // The upgrade is confirmed: the new supervisor becomes the service's main process.
        sys::notify(fmt::format("MAINPID={}\nSTATUS=handing over to pid {}", upgrade_child_,
                                upgrade_child_));
        log_.info("the new binary (pid {}) takes over", upgrade_child_);
    } else {
        sys::notify("STOPPING=1");
    }
    // Our copies of the listening sockets go now. With the workers closing theirs, the
    // kernel refuses new connections rather than queueing them for nobody.
    if (current_) current_->listeners.clear();
    if (previous_) previous_->listeners.clear();
    for (auto& w : pool_.workers()) w.gen->listeners.clear();
    if (mode == stop_mode::fast) {
        log_.info("fast stop: terminating {} worker(s)", pool_.workers().size());
        pool_.signal_all(SIGTERM);
        stop_deadline_ms_ = now + fast_stop_grace_ms;
    } else {
        int64_t grace = 0;
        for (auto& w : pool_.workers()) {
            grace = std::max<int64_t>(grace, w.gen->cfg.workers.graceful_timeout.count());
            w.retiring = true;
        }
        log_.info("graceful stop: {} worker(s) finish their requests (up to {} ms)",
                  pool_.workers().size(), grace);
        pool_.signal_all(SIGQUIT);
        stop_deadline_ms_ = now + grace + tick_ms;
    }
}

void supervisor::finish_stop() {
    if (pid_file_written_ && current_) {
        const std::string& f = current_->cfg.server.pid_file;
        // Only our own: after USR2 the new supervisor owns the pid file, and ours is .oldbin.
        for (const std::string& name : {f, f + ".oldbin"})
            if (sys::read_pid_file(name) == ::getpid()) ::unlink(name.c_str());
    }
    // A unix socket file goes with the last server using it: not while the new binary of an
    // upgrade serves on it, not one inherited from an older supervisor that still runs (a
    // rolled-back upgrade: it serves on it again), and never one systemd made.
    if (upgrade_child_ == 0) {
        for (const auto& p : owned_unix_paths_) ::unlink(p.c_str());
        if (upgrade_parent_ == 0 || ::getppid() != upgrade_parent_)
            for (const auto& p : upgrade_unix_paths_) ::unlink(p.c_str());
    }
    log_.info("stopped");
}

void supervisor::share_board_with(const sys::credentials& creds) {
    const std::string& path = pool_.board().path();
    if (path.empty() || !creds.change) return;
    // Owner root (us), group the service's: the service user may watch its own server, other
    // users may not (the scoreboard names pids and counts traffic).
    if (::chown(path.c_str(), static_cast<uid_t>(-1), creds.gid) != 0)
        log_.warn("cannot give {} to group {}: {}", path, creds.group, std::strerror(errno));
}

void supervisor::reopen_logs() {
    if (log_.target() != "stderr") {
        if (auto r = log_.open(log_.target()); !r) log_.error("USR1: {}", r.err().message);
    }
    const auto& creds = current_->creds;
    // Workers reopen the files by name after us, as their own user: the files must be theirs.
    if (creds.change && log_.target() != "stderr") {
        if (::fchown(log_.fd(), creds.uid, static_cast<gid_t>(-1)) != 0)
            log_.warn("chown {}: {}", log_.target(), std::strerror(errno));
    }
    const std::string& access = current_->cfg.log.access;
    if (current_->access_log) {
        auto fd = open_log_file(access);
        if (fd) {
            if (creds.change) {
                if (::fchown(fd->get(), creds.uid, static_cast<gid_t>(-1)) != 0)
                    log_.warn("chown {}: {}", access, std::strerror(errno));
            }
            current_->access_log = std::move(*fd);
        } else {
            log_.error("USR1: {}", fd.err().message);
        }
    }
    // The application's own logs: re-created (after a rename) and theirs before they reopen.
    prepare_app_logs(current_->cfg, creds);
    pool_.signal_all(SIGUSR1);
    log_.info("logs reopened");
}

void supervisor::adjust_floor(int delta) {
    int max = current_->cfg.workers.max;
    int wanted = std::clamp(floor_ + delta, 1, max);
    if (wanted == floor_) {
        log_.info("{}: the pool floor stays at {} (bounds 1..{})", delta > 0 ? "TTIN" : "TTOU",
                  floor_, max);
    } else {
        log_.info("{}: pool floor {} -> {}", delta > 0 ? "TTIN" : "TTOU", floor_, wanted);
        floor_ = wanted;
    }
    const generation_snapshot now = pool_.snapshot(*current_);
    if (delta > 0) {
        if (room_under_max({now.serving(), now.idle, floor_, now.retiring}, max) > 0)
            (void)spawn(current_);  // a failure is logged there
        return;
    }
    if (now.serving() <= floor_) return;
    // Retire one at once, the spare bounds notwithstanding: an idle one if any.
    worker_record* pick = nullptr;
    for (auto& w : pool_.workers()) {
        if (w.gen != current_ || w.retiring) continue;
        bool idle = pool_.board().slot(w.slot).get_state() == worker_state::idle;
        bool pick_idle = pick && pool_.board().slot(pick->slot).get_state() == worker_state::idle;
        if (!pick || (idle && !pick_idle) || (idle == pick_idle && w.started_ms > pick->started_ms))
            pick = &w;
    }
    if (pick) pool_.retire(*pick, "TTOU");
}

}  // namespace preforkd
