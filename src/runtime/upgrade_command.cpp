#include "runtime/upgrade_command.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <preforkd/config.hpp>
#include <sstream>
#include <thread>

#include "core/pid_file_setting.hpp"
#include "sys/pid_file.hpp"

namespace preforkd {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct proc_stat {
    char state = '?';
    pid_t ppid = 0;
};

// /proc/PID/stat: "pid (comm) S ppid ..."; comm may hold spaces and parentheses, so the
// fields are read after the last ')'.
std::optional<proc_stat> read_stat(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    size_t close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 1));
    proc_stat s;
    long long ppid = 0;
    if (!(rest >> s.state >> ppid)) return std::nullopt;
    s.ppid = static_cast<pid_t>(ppid);
    return s;
}

// Gone, or a zombie its parent has not reaped yet (a supervisor started in the foreground by
// a shell or a test): either way it serves no more.
bool alive(pid_t pid) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
    auto st = read_stat(pid);
    return st && st->state != 'Z' && st->state != 'X';
}

// The pid file's identity: rename() keeps the inode but updates the ctime, so the old
// supervisor moving it to .oldbin and back is seen even when both happen between two polls.
// A write in place (the supervisor writes its pid into its locked file once it is ready)
// changes the mtime too: that is no round trip.
// A chmod, chown or link changes the ctime too: those are no rename, so the mode, owner and
// link count must be the same.
struct file_identity {
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t ctime_ns = 0;
    int64_t mtime_ns = 0;
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    nlink_t nlink = 0;
    bool operator==(const file_identity&) const = default;
    bool same_inode(const file_identity& o) const noexcept { return dev == o.dev && ino == o.ino; }
    bool renamed_since(const file_identity& o) const noexcept {
        return same_inode(o) && ctime_ns != o.ctime_ns && mtime_ns == o.mtime_ns &&
               mode == o.mode && uid == o.uid && gid == o.gid && nlink == o.nlink;
    }
};
std::optional<file_identity> identity_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return file_identity{
        st.st_dev,
        st.st_ino,
        static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec,
        static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_nlink};
}

std::string exe_of(pid_t pid) {
    std::error_code ec;
    return std::filesystem::read_symlink(fmt::format("/proc/{}/exe", pid), ec).string();
}

double seconds(steady_clock::duration d) {
    return static_cast<double>(std::chrono::duration_cast<milliseconds>(d).count()) / 1000.0;
}

}  // namespace

bool rollback_watch::observe(bool moved, bool looks, bool same, steady_clock::time_point now) {
    if (moved) moved_seen_ = true;
    const bool held = looks && was_looking_ && same;
    if (!held) since_ = now;
    was_looking_ = looks;
    return held && (moved_seen_ || now - since_ >= ctime_only_patience);
}

upgrade_step judge_upgrade(const upgrade_view& v) {
    // Ready: the new supervisor wrote its pid once it served, and the one it names is the
    // old one's child (not a stale file, nor a server someone started meanwhile).
    if (v.named && *v.named != v.old_pid && v.named_alive && v.named_parent == v.old_pid &&
        v.oldbin == v.old_pid)
        return {upgrade_phase::ready, *v.named, {}};
    if (!v.old_alive)
        return {upgrade_phase::failed, 0,
                fmt::format("the old supervisor (pid {}) exited during the upgrade", v.old_pid)};
    // The old one took its pid file back: the new binary exited (the old one logs how). Only
    // the original inode back in place, seen twice, proves it (see upgrade_view).
    if (v.handled && v.named == v.old_pid && !v.oldbin && v.original_inode && v.confirmed)
        return {upgrade_phase::failed, 0,
                fmt::format("the new binary exited before it was ready (see the error log); the "
                            "old supervisor (pid {}) serves on",
                            v.old_pid)};
    return {};
}

int upgrade_server(const std::string& program, const std::string& pid_file,
                   const upgrade_limits& limits, std::FILE* out, std::FILE* err) {
    auto fail = [&](const std::string& why) {
        std::fprintf(err, "%s: upgrade failed: %s\n", program.c_str(), why.c_str());
        return 1;
    };
    const std::string oldbin_file = pid_file + ".oldbin";
    auto old = sys::read_pid_file(pid_file);
    if (!old) return fail(fmt::format("no pid in {}: is {} running?", pid_file, program));
    const pid_t old_pid = *old;
    if (!sys::is_live_instance(old_pid))
        return fail(fmt::format("pid {} from {} is not a running {}", old_pid, pid_file, program));
    // A USR2 during an upgrade is ignored by the supervisor: say so instead of waiting.
    if (auto ob = sys::read_pid_file(oldbin_file); ob && sys::is_live_instance(*ob))
        return fail(
            fmt::format("an upgrade is already under way ({} names pid {}): QUIT pid {} "
                        "to finish it, or TERM pid {} to roll back",
                        oldbin_file, *ob, *ob, old_pid));

    const auto before = identity_of(pid_file);
    const auto started = steady_clock::now();
    if (::kill(old_pid, SIGUSR2) != 0)
        return fail(fmt::format("cannot send USR2 to pid {}: {}", old_pid, std::strerror(errno)));
    std::fprintf(out, "%s: upgrade: sent USR2 to the supervisor (pid %d)\n", program.c_str(),
                 old_pid);
    std::fflush(out);

    upgrade_view v;
    v.old_pid = old_pid;
    upgrade_step step;
    // What the previous poll saw when it looked like a rollback (the pid file's identity), and
    // since when. The pid file's ctime was seen to change in place with no rename (mtime and
    // inode unchanged, ~40 ms after the previous upgrade's new supervisor wrote it): a ctime
    // change alone proves nothing until the old supervisor had ample time to act on the USR2.
    std::optional<file_identity> rollback_seen;
    rollback_watch watch;
    for (;;) {
        v.old_alive = alive(old_pid);
        // The identity before and after the content: a rename between the reads shows.
        const auto id_first = identity_of(pid_file);
        v.named = sys::read_pid_file(pid_file);
        v.oldbin = sys::read_pid_file(oldbin_file);
        const auto id_now = identity_of(pid_file);
        v.named_alive = v.named && sys::is_live_instance(*v.named);
        auto st = v.named ? read_stat(*v.named) : std::nullopt;
        v.named_parent = st ? st->ppid : 0;
        if (v.oldbin == old_pid) v.handled = true;
        if (id_now && before && id_now->renamed_since(*before)) v.handled = true;
        const bool steady = id_first && id_now && *id_first == *id_now;
        v.original_inode = steady && before && id_now->same_inode(*before);
        const bool moved = v.oldbin == old_pid || (steady && before && !v.original_inode) ||
                           (!id_first && !id_now);
        const bool looks_rolled_back = steady && v.named == old_pid && !v.oldbin;
        v.confirmed =
            watch.observe(moved, looks_rolled_back, rollback_seen == id_now, steady_clock::now());
        rollback_seen = looks_rolled_back ? id_now : std::nullopt;
        step = judge_upgrade(v);
        if (step.phase != upgrade_phase::waiting) break;
        if (steady_clock::now() - started >= limits.ready)
            return fail(fmt::format(
                "no new supervisor was ready within {} s{}; the old one (pid {}) serves on",
                seconds(limits.ready),
                v.handled ? "" : " (the old supervisor did not act on USR2: is it stopping?)",
                old_pid));
        std::this_thread::sleep_for(limits.poll);
    }
    if (step.phase == upgrade_phase::failed) return fail(step.reason);

    const pid_t new_pid = step.new_pid;
    const auto ready_at = steady_clock::now();
    std::fprintf(out, "%s: upgrade: the new supervisor (pid %d, %s) serves after %.3f s\n",
                 program.c_str(), new_pid, exe_of(new_pid).c_str(), seconds(ready_at - started));
    std::fflush(out);

    if (::kill(old_pid, SIGQUIT) != 0 && errno != ESRCH)
        return fail(
            fmt::format("the new supervisor (pid {}) serves, but QUIT to the old one (pid "
                        "{}) failed: {}; both serve now",
                        new_pid, old_pid, std::strerror(errno)));
    while (alive(old_pid)) {
        if (steady_clock::now() - ready_at >= limits.old_exit)
            return fail(
                fmt::format("the new supervisor (pid {}) serves, but the old one (pid {}) "
                            "is still running {} s after QUIT",
                            new_pid, old_pid, seconds(limits.old_exit)));
        std::this_thread::sleep_for(limits.poll);
    }
    const auto done = steady_clock::now();
    std::fprintf(out,
                 "%s: upgrade: the old supervisor (pid %d) exited %.3f s after QUIT; pid %d "
                 "serves (upgrade took %.3f s)\n",
                 program.c_str(), old_pid, seconds(done - ready_at), new_pid,
                 seconds(done - started));
    return 0;
}

int run_upgrade_command(const application& app, const std::string& config_path) {
    auto pid_file = load_pid_file_setting(config_path);
    if (!pid_file) {
        std::fprintf(stderr, "%s: %s\n", app.name.c_str(), pid_file.err().message.c_str());
        return 1;
    }
    upgrade_limits limits;
    // The old supervisor's workers finish within graceful_timeout, then are killed; the
    // running server's value may differ from the file's, so a margin is kept either way.
    if (auto cfg = load_config(config_path, app.schema))
        limits.old_exit =
            std::max(limits.old_exit, cfg->workers.graceful_timeout + milliseconds(15'000));
    return upgrade_server(app.name, *pid_file, limits, stdout, stderr);
}

}  // namespace preforkd
