// The supervisor: binds the listeners, forks and watches the workers, and reacts to
// signals and a one-second maintenance tick. It never parses HTTP and never accepts.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <preforkd/config.hpp>
#include <preforkd/log.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <vector>

#include "core/worker_start.hpp"
#include "supervisor/listeners.hpp"
#include "supervisor/pool.hpp"
#include "supervisor/scaling.hpp"
#include "sys/daemon.hpp"
#include "sys/pid_file.hpp"
#include "sys/privileges.hpp"

namespace preforkd {

struct supervisor_options {
    sys::daemon_handshake* handshake = nullptr;  // daemon mode: closed in every worker
    sys::inheritance inherited;                  // adopted instead of bound (upgrade, systemd)
    std::string exe;                             // our binary's path, for USR2
    std::vector<std::string> argv;               // our command line, for USR2
    sys::pid_file_lock* pid_lock = nullptr;      // server.pid_file, locked; moved by reload
    // Start-up outcome, for whoever started us (the daemon's parent, a foreground terminal).
    std::function<void()> on_ready;
    std::function<void(const std::string&)> on_start_failed;
};

class supervisor {
  public:
    // `load` re-reads the configuration on HUP (the file and the application's schema).
    supervisor(config cfg, std::function<result<config>()> load, worker_entry entry, logger& log,
               supervisor_options opts);
    ~supervisor();
    supervisor(const supervisor&) = delete;
    supervisor& operator=(const supervisor&) = delete;

    // Runs until stopped; returns the exit status (0 clean stop, 1 start-up failure).
    int run();

  private:
    enum class stop_mode { none, graceful, fast };

    // supervisor.cpp: the loop and the signals
    result<void> start();
    void wait_for_signals(int timeout_ms);
    void handle_signal(int signo, pid_t sender);
    void tick();
    void check_ready();
    void begin_stop(stop_mode mode);
    bool begin_drain();
    void finish_stop();
    void reopen_logs();
    // The scoreboard file readable by `--status` as the workers' group (root:group 0640).
    void share_board_with(const sys::credentials& creds);
    // Opens (creating) each of cfg.log.app_files and gives it to the workers' user, so that
    // workers can reopen it by name; problems are logged, never fatal (the application
    // opened the files when it loaded the configuration).
    void prepare_app_logs(const config& cfg, const sys::credentials& creds);
    void adjust_floor(int delta);
    int64_t next_wakeup_ms() const;

    // maintenance.cpp: the pool's policy
    result<pid_t> spawn(const std::shared_ptr<generation>& gen);
    void spawn_up_to_floor();
    void reap();
    void worker_exited(const reaped_child& c);
    void scale();

    // upgrade.cpp: USR2
    void begin_upgrade();
    void upgrade_child_exited(int status);

    // reload.cpp
    void reload();
    void finish_reload_if_ready();
    void abandon_reload(const std::string& why);
    void close_unwanted_listeners();
    result<std::shared_ptr<generation>> make_generation(config cfg, uint32_t id,
                                                        std::vector<int> config_fds);

    config boot_cfg_;  // until start() moves it into the first generation
    std::function<result<config>()> load_;
    worker_entry entry_;
    logger& log_;
    supervisor_options opts_;

    unique_fd signals_;
    shared_ticket_ring tickets_;  // mapped before the pool so it outlives every fork
    worker_pool pool_;
    std::shared_ptr<generation> current_;
    std::shared_ptr<generation> previous_;  // the generation being replaced by a reload
    uint32_t last_generation_ = 1;
    int floor_ = 0;                 // workers.start, moved by TTIN/TTOU
    int previous_floor_ = 0;        // the floor of previous_, kept while a reload is not up
    std::string reload_failure_;    // why the reload's generation cannot start (a fatal exit)
    int spawn_rate_ = 1;            // spare scaling ramp (1, 2, 4 … 32)
    int crashes_ = 0;               // consecutive crash-at-start exits
    int young_kills_in_a_row_ = 0;  // young workers SIGKILLed, none of age (maintenance.cpp)
    int64_t spawn_after_ms_ = 0;    // crash back-off: no fork of current_ before this
    int64_t backoff_logged_for_ = -1;
    int64_t next_tick_ms_ = 0;
    int64_t reload_started_ms_ = 0;
    bool reload_queued_ = false;
    bool ready_ = false;
    int64_t start_ms_ = 0;
    stop_mode stopping_ = stop_mode::none;
    int64_t stop_deadline_ms_ = 0;
    // TERM with server.shutdown_delay: serving on, health 503, until this time; then as QUIT.
    int64_t drain_until_ms_ = 0;
    bool stop_escalated_ = false;
    int exit_status_ = 0;
    bool pid_file_written_ = false;
    pid_t upgrade_child_ = 0;  // the new binary started by USR2, while it runs
    // Started by an older supervisor's USR2: its pid, while it may still run (else 0).
    pid_t upgrade_parent_ = 0;
    // Unix socket files this process bound itself: the only ones it may unlink. Inherited
    // ones (upgrade: the old supervisor may still serve on them) and systemd's are not ours.
    std::vector<std::string> owned_unix_paths_;
    std::vector<std::string> upgrade_unix_paths_;  // inherited from the supervisor above
    std::vector<std::string> systemd_unix_paths_;  // systemd's: never unlinked
};

}  // namespace preforkd
