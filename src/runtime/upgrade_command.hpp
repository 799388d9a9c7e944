// `preforkd -s upgrade`: a whole binary upgrade, for scripts (the package's postinst) and for
// operators who would otherwise send USR2, watch the pid files and send QUIT by hand:
//   1. USR2 to the supervisor named by server.pid_file;
//   2. wait until the pid file names a new supervisor, child of the old one, while
//      <pid_file>.oldbin names the old one: the new one writes its pid only once its
//      listeners are bound and its first workers serve;
//   3. QUIT the old one and wait for it (and so its workers) to exit.
// If the new binary fails, the old supervisor takes its pid file back and serves on: the
// command exits 1 saying why, and nothing else is touched (that is the rollback).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <preforkd/application.hpp>
#include <string>

namespace preforkd {

// What the pid files and /proc show at one moment of the upgrade of `old_pid`.
struct upgrade_view {
    pid_t old_pid = 0;
    bool old_alive = true;        // neither gone nor a zombie
    std::optional<pid_t> named;   // what server.pid_file names now
    bool named_alive = false;     // `named` is a live instance of this program
    pid_t named_parent = 0;       // the parent of `named`; 0 when unknown
    std::optional<pid_t> oldbin;  // what <pid_file>.oldbin names now
    // The old supervisor acted on the USR2: .oldbin was seen naming it, or the pid file was
    // renamed since (a round trip to .oldbin and back changes its ctime or inode).
    bool handled = false;
    // server.pid_file is the very inode it was before the USR2: a rollback renames that inode
    // back, while a successful upgrade leaves it at .oldbin and puts a new file in its place.
    bool original_inode = false;
    // The previous poll saw the same (the same pid file, same identity, no .oldbin). The two
    // files cannot be read at once: one poll may read both just before the old supervisor
    // renames the pid file, so one poll alone never proves a rollback.
    bool confirmed = false;
};

enum class upgrade_phase { waiting, ready, failed };

struct upgrade_step {
    upgrade_phase phase = upgrade_phase::waiting;
    pid_t new_pid = 0;   // when ready
    std::string reason;  // when failed
};

// When a view that reads like a rollback (the old pid in the original pid file, no .oldbin)
// is believed: on the second poll in a row once the rename to .oldbin was seen, else (the
// round trip fell between two polls, or the pid file's ctime changed in place, which was seen
// with no rename at all) only after `ctime_only_patience` of the same view: by then the old
// supervisor has renamed its pid file if it acts on the USR2 at all.
class rollback_watch {
  public:
    static constexpr std::chrono::milliseconds ctime_only_patience{1'000};
    // moved: this poll saw the original pid file away from its place. looks: this poll reads
    // like a rollback; same: with the very pid-file identity the previous poll had.
    bool observe(bool moved, bool looks, bool same, std::chrono::steady_clock::time_point now);

  private:
    bool moved_seen_ = false;
    bool was_looking_ = false;
    std::chrono::steady_clock::time_point since_{};
};

// The decision, apart from the polling, so that every case is unit-tested.
upgrade_step judge_upgrade(const upgrade_view& v);

struct upgrade_limits {
    // The new supervisor gives up by itself after 10 s without a worker; this is longer.
    std::chrono::milliseconds ready{30'000};
    // The old one exits within workers.graceful_timeout (and kills what is left then).
    std::chrono::milliseconds old_exit{45'000};
    std::chrono::milliseconds poll{20};
};

// Runs the upgrade of the supervisor named by `pid_file`. Progress goes to `out`, the reason
// of a failure to `err`, each line starting with `program`. Returns the exit status: 0 when
// the new supervisor serves and the old one has exited, 1 otherwise.
int upgrade_server(const std::string& program, const std::string& pid_file,
                   const upgrade_limits& limits, std::FILE* out, std::FILE* err);

// `preforkd -s upgrade -c FILE`: reads server.pid_file (and, when the whole file still loads,
// workers.graceful_timeout for the wait on the old supervisor) and runs upgrade_server.
int run_upgrade_command(const application& app, const std::string& config_path);

}  // namespace preforkd
