// The pid file: locked from start-up on, so that two servers with the same pid_file cannot
// both run; written once the server is ready; read by `-s`.
#pragma once

#include <sys/types.h>

#include <optional>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>

namespace preforkd::sys {

// The pid in `path`, or nullopt if the file is missing or holds no number.
std::optional<pid_t> read_pid_file(const std::string& path);

// Writes `pid` into `path` in place (created if missing): the file's lock (pid_file_lock)
// lives on its inode, which a rename over it would replace. The file is empty until then
// (the lock truncates it), so a reader sees no pid or the whole one.
result<void> write_pid_file(const std::string& path, pid_t pid);

// True when `pid` is a live process running the same program as this one (its /proc comm
// matches ours): a recycled pid of another program does not count.
bool is_live_instance(pid_t pid);

// An open file description lock (F_OFD_SETLK) on the pid file, held from start-up to exit.
// Taking it is the guard against a second server: atomic, unlike reading the file and
// checking its pid, and released by the kernel however the holder dies. Unlike flock and
// like every fcntl lock, a fork does not hand it on by itself; workers close their copy of
// the descriptor (close_fds) so that only the supervisor holds it, and it is close-on-exec.
class pid_file_lock {
  public:
    pid_file_lock() = default;
    pid_file_lock(pid_file_lock&&) = default;
    pid_file_lock& operator=(pid_file_lock&&) = default;
    // Removes the file if it is still ours and names no other process (a failed start).
    ~pid_file_lock();

    // Creates the missing folders of `path`, opens or creates it, locks it and empties it.
    // Held by another process: an error "already running as pid N: another <program> holds
    // the pid file PATH".
    static result<pid_file_lock> acquire(const std::string& path, const std::string& program);

    // server.pid_file moved by a reload: creates the new folders, locks the new file, writes
    // `pid` into it when `pid` > 0 (the server is ready), then removes the old file and lets
    // its lock go. On failure nothing changes (the old file stays locked and written) and the
    // error says why.
    result<void> move_to(const std::string& path, pid_t pid, const std::string& program);

    const std::string& path() const noexcept { return path_; }
    int fd() const noexcept { return fd_.get(); }

    // What the destructor does, now: a failed start removes its file before the daemon's
    // waiting parent reports the failure, so that the file is gone when the command returns.
    void remove_unless_another_holds_it() noexcept;

  private:
    // True when `path_` still names the inode we hold (not renamed away by USR2's .oldbin).
    bool still_ours() const noexcept;

    std::string path_;
    unique_fd fd_;
};

}  // namespace preforkd::sys
