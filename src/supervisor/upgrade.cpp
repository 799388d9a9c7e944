// Binary upgrade (USR2), as nginx does it: the running supervisor starts the binary now on
// disk, handing it the listening sockets; both serve until the operator sends QUIT to the
// old one (done) or TERM to the new one (rolled back: the old one takes its pid file back).
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "supervisor/supervisor.hpp"
#include "sys/inherited_sockets.hpp"
#include "sys/pid_file.hpp"
#include "sys/signals.hpp"

namespace preforkd {

void supervisor::begin_upgrade() {
    if (upgrade_parent_ != 0 && ::getppid() == upgrade_parent_) {
        // We are the new binary of an upgrade still undecided: a third supervisor now would
        // leave the oldest one named in no pid file.
        log_.warn(
            "USR2 ignored: this supervisor was started by the upgrade of pid {}, which "
            "still runs; QUIT that one (or TERM this one) first",
            upgrade_parent_);
        return;
    }
    if (upgrade_child_ > 0) {
        log_.warn(
            "USR2: the new binary (pid {}) is still running; QUIT this supervisor or TERM "
            "that one first",
            upgrade_child_);
        return;
    }
    if (opts_.exe.empty() || opts_.argv.empty()) {
        log_.error("USR2: the path of the running binary is unknown; cannot upgrade");
        return;
    }
    const std::string& pid_file = current_->cfg.server.pid_file;
    std::string oldbin = pid_file + ".oldbin";
    if (pid_file_written_ && ::rename(pid_file.c_str(), oldbin.c_str()) != 0) {
        log_.error("USR2: cannot rename {} to {}: {}", pid_file, oldbin, std::strerror(errno));
        return;
    }

    std::vector<std::pair<int, std::string>> fds;
    for (const auto& l : current_->listeners) fds.emplace_back(l->fd.get(), l->addr.to_string());
    std::string env = sys::format_listeners_env(fds);
    // The session ticket keys go along (a copy in a memfd): tickets issued before the
    // upgrade resume after it. Without it the new binary only starts with fresh keys.
    unique_fd tickets(tickets_.export_for_upgrade());
    const std::string tickets_env = tickets ? std::to_string(tickets.get()) : std::string();
    std::vector<std::string> args = opts_.argv;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_t pid = ::fork();
    if (pid == 0) {
        // Only the listening sockets cross the exec; everything else is close-on-exec.
        for (const auto& [fd, addr] : fds) ::fcntl(fd, F_SETFD, 0);
        ::setenv(sys::listeners_env, env.c_str(), 1);
        if (tickets) {
            ::fcntl(tickets.get(), F_SETFD, 0);
            ::setenv(ticket_keys_env, tickets_env.c_str(), 1);
        }
        sys::reset_signal_state();  // the new binary starts with nothing blocked
        ::execv(opts_.exe.c_str(), argv.data());
        ::_exit(127);
    }
    if (pid < 0) {
        log_.error("USR2: fork: {}", std::strerror(errno));
        if (pid_file_written_) ::rename(oldbin.c_str(), pid_file.c_str());
        return;
    }
    upgrade_child_ = pid;
    log_.info(
        "USR2: started the new binary {} as pid {} with {} listening socket(s); QUIT this "
        "supervisor (pid {}) once it serves, or TERM it to roll back",
        opts_.exe, pid, fds.size(), ::getpid());
}

void supervisor::upgrade_child_exited(int status) {
    pid_t pid = upgrade_child_;
    upgrade_child_ = 0;
    std::string how =
        status < 0 ? std::string("ended unseen")
        : WIFEXITED(status)
            ? fmt::format("exited with status {}", WEXITSTATUS(status))
            : fmt::format("was killed by signal {}", sys::signal_name(WTERMSIG(status)));
    log_.warn("the new binary (pid {}) {}: this supervisor carries on", pid, how);
    if (!pid_file_written_) return;
    const std::string& pid_file = current_->cfg.server.pid_file;
    auto named = sys::read_pid_file(pid_file);
    if (!named || *named == pid || !sys::is_live_instance(*named)) {
        std::string oldbin = pid_file + ".oldbin";
        if (::rename(oldbin.c_str(), pid_file.c_str()) != 0)
            (void)sys::write_pid_file(pid_file, ::getpid());
        log_.info("pid file {} names this supervisor again", pid_file);
    }
}

}  // namespace preforkd
