#include "runtime/status_command.hpp"

#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <preforkd/clock.hpp>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/scoreboard.hpp>

#include "core/pid_file_setting.hpp"
#include "runtime/status_view.hpp"
#include "sys/pid_file.hpp"

namespace preforkd {
namespace {

std::string group_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    if (const group* g = ::getgrgid(st.st_gid)) return g->gr_name;
    return std::to_string(st.st_gid);
}

void print(FILE* to, const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), to);
    std::fflush(to);
}

}  // namespace

status_reading read_status(const std::string& pid_file, const std::string& program) {
    auto pid = sys::read_pid_file(pid_file);
    if (!pid && ::access(pid_file.c_str(), R_OK) != 0 && errno == EACCES)
        return {status_exit::unknown,
                fmt::format("permission denied: cannot read {}; run --status as root or as the "
                            "service's group",
                            pid_file)};
    std::string note;
    if (!pid) {
        // A binary upgrade under way: the old supervisor renamed the file to .oldbin and
        // serves on until the new one writes the pid file, once it is ready.
        const std::string oldbin = pid_file + ".oldbin";
        auto old = sys::read_pid_file(oldbin);
        if (old && ::kill(*old, 0) == 0) {
            pid = old;
            note = fmt::format("(an upgrade is under way: the old supervisor, from {})\n", oldbin);
        }
    }
    if (!pid)
        return {status_exit::not_running, fmt::format("not running (no pid in {})", pid_file)};
    // EPERM: it exists, only not ours to signal (any user may look).
    if (::kill(*pid, 0) != 0 && errno == ESRCH)
        return {status_exit::stale,
                fmt::format("not running: {} names pid {}, which is gone (a stale pid file)",
                            pid_file, *pid)};
    const std::string path = scoreboard::file_name_for(pid_file, *pid);
    auto board = scoreboard::open_read_only(path);
    if (!board) {
        const std::error_code& ec = board.err().code;
        if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) {
            const std::string group = group_of(path);
            return {status_exit::unknown,
                    fmt::format("permission denied: {} is readable by root and {} only; run "
                                "--status as one of them",
                                path, group.empty() ? "the service's group" : "group " + group)};
        }
        if (ec == std::errc::no_such_file_or_directory)
            return {status_exit::unknown,
                    fmt::format("{} runs as pid {} but has no scoreboard {} (a version without "
                                "--status, or it could not create the file: see its error log)",
                                program, *pid, path)};
        if (ec == std::errc::resource_unavailable_try_again)
            return {status_exit::unknown,
                    fmt::format("{}: pid {} is starting up; try again", board.err().message, *pid)};
        return {status_exit::unknown, board.err().message};
    }
    const pid_t owner = board->header().supervisor_pid.load(std::memory_order_relaxed);
    if (owner != 0 && owner != *pid)
        return {status_exit::stale,
                fmt::format("{} is stale: it was written by pid {}, while {} names pid {}", path,
                            owner, pid_file, *pid)};
    return {status_exit::running, note + render_status_view(*board, monotonic_ms(), wall_ms())};
}

int run_status_command(const application& app, const std::string& config_path, bool watch) {
    auto pid_file = load_pid_file_setting(config_path);
    if (!pid_file) {
        print(stderr, fmt::format("{}: {}\n", app.name, pid_file.err().message));
        return static_cast<int>(status_exit::unknown);
    }
    status_reading first = read_status(*pid_file, app.name);
    if (first.code != status_exit::running) {
        print(stderr, fmt::format("{}: {}\n", app.name, first.text));
        return static_cast<int>(first.code);
    }
    if (!watch) {
        print(stdout, first.text);
        return 0;
    }
    // Ctrl-C and TERM end the watch: blocked and taken by sigtimedwait, which is also the
    // one-second pause between two redraws, so no handler and no race with the sleep.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &stop, nullptr);
    status_reading r = std::move(first);
    for (;;) {
        // Home, clear: the whole view redrawn in one write, so it does not flicker.
        std::string frame = "\x1b[H\x1b[2J";
        frame +=
            r.code == status_exit::running ? r.text : fmt::format("{}: {}\n", app.name, r.text);
        frame += fmt::format("\nevery 1s, {}: Ctrl-C to quit\n", config_path);
        print(stdout, frame);
        const timespec second{1, 0};
        const int sig =
            detail::retry_eintr([&] { return ::sigtimedwait(&stop, nullptr, &second); });
        if (sig == SIGINT || sig == SIGTERM) break;
        // Each time anew: after an upgrade the pid file names the new supervisor, and a stop
        // and start makes a new scoreboard.
        r = read_status(*pid_file, app.name);
    }
    return 0;
}

}  // namespace preforkd
