// The worker pool: the workers' records and their scoreboard slots, and the mechanics of
// forking, reaping, retiring and watching them. It decides nothing about how many there
// should be: the supervisor reads snapshot() and asks for spawns and retirements.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/log.hpp>
#include <preforkd/result.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <vector>

#include "core/worker_start.hpp"
#include "supervisor/listeners.hpp"
#include "supervisor/scaling.hpp"
#include "supervisor/tls_setup.hpp"
#include "sys/daemon.hpp"
#include "sys/privileges.hpp"

namespace preforkd {

// Everything a generation's workers are started with. Shared by the workers' records, so
// an old generation's sockets and settings live until its last worker is reaped.
struct generation {
    uint32_t id = 0;
    config cfg;
    listener_list listeners;
    sys::credentials creds;
    unique_fd access_log;  // empty when off or stderr
    // Descriptors its configuration holds open (an application's own, e.g. http.root's O_PATH
    // folder): closed in the workers of every other generation, which must not keep an old
    // docroot busy (it could not be unmounted). Owned by `cfg`; listed for the fork only.
    std::vector<int> config_fds;
    // Its certificates and SSL_CTX (null without [tls] certificates), inherited by its workers.
    std::shared_ptr<const tls_generation> tls;
};

// The descriptors open in this process right now (above stderr).
std::vector<int> open_descriptors();

struct worker_record {
    pid_t pid = 0;
    uint32_t slot = 0;
    std::shared_ptr<generation> gen;
    int64_t started_ms = 0;
    bool retiring = false;   // told (or decided) to retire: no longer counts as serving
    int64_t kill_at_ms = 0;  // retiring or stopping: SIGKILL if still alive then
    bool killed = false;     // SIGKILL sent
    bool healthy = false;    // lived past the crash window
};

// A child collected by reap().
struct reaped_child {
    pid_t pid = 0;
    int status = 0;
    bool worker = false;
    worker_record record;  // when `worker`
    std::string reason;    // the worker's own word on a fatal exit (its slot's exit_reason)
};

class worker_pool {
  public:
    worker_pool(logger& log, worker_entry entry, sys::daemon_handshake* handshake)
        : log_(log), entry_(std::move(entry)), handshake_(handshake) {}

    // The scoreboard, as the file scoreboard.<pid> beside `pid_file` (stale ones of dead
    // supervisors removed first), or anonymous when `pid_file` is empty or that fails.
    result<void> create_board(uint32_t capacity, const std::string& pid_file);
    scoreboard& board() noexcept { return board_; }
    // The supervisor's signalfd: closed in every child.
    void set_signal_fd(int fd) noexcept { signal_fd_ = fd; }

    // Forks a worker of `gen`. `others`: the live generations besides the workers' own,
    // whose descriptors the child must not keep. Fork failures back off (fork_after_ms).
    result<pid_t> spawn(const std::shared_ptr<generation>& gen,
                        const std::vector<const generation*>& others);
    int64_t fork_after_ms() const noexcept { return fork_after_ms_; }

    // Collects every exited child (waitpid, WNOHANG). ECHILD, no child left at all while
    // records say otherwise (the kernel reaped them: SIGCHLD was ignored), drops those
    // records: their pids are never signalled again. `vanished` counts them.
    std::vector<reaped_child> reap(int& vanished);

    // QUIT: finish what is in flight, then go; SIGKILL after graceful_timeout + 1 s.
    void retire(worker_record& w, const char* why);
    // The tick's look at each worker: retiring by itself, coming of age, overdue to leave.
    // Returns the workers of `gen` that came of age now.
    int tick(int64_t now, const generation* gen);
    // SIGKILLs workers whose heartbeat is older than their heartbeat_timeout (3 s at least).
    void watchdog(int64_t now);
    // SIGKILLs every worker not yet killed; true if there was any.
    bool kill_all_remaining();

    void signal_all(int signo);
    void send_signal(pid_t pid, int signo);

    // One count of a generation's workers, for every decision.
    generation_snapshot snapshot(const generation& gen) const;
    std::vector<worker_record>& workers() noexcept { return workers_; }
    const std::vector<worker_record>& workers() const noexcept { return workers_; }
    bool empty() const noexcept { return workers_.empty(); }

  private:
    std::vector<int> fds_to_close_in_child(const generation& gen,
                                           const std::vector<const generation*>& others) const;

    logger& log_;
    worker_entry entry_;
    sys::daemon_handshake* handshake_;
    scoreboard board_;
    std::vector<bool> slot_taken_;
    std::vector<worker_record> workers_;
    int signal_fd_ = -1;
    int fork_failures_ = 0;      // consecutive failed forks (a process limit, memory)
    int64_t fork_after_ms_ = 0;  // fork-failure back-off: no fork before this
};

}  // namespace preforkd
