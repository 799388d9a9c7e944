#include "sys/pid_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <system_error>

namespace preforkd::sys {
namespace {

std::string read_comm(const std::string& proc_path) {
    std::ifstream in(proc_path);
    std::string s;
    std::getline(in, s);
    return s;
}

result<void> create_folders(const std::string& path) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) return {};
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return error(ec, fmt::format("cannot create the folder {} of pid file {}: {}", dir.string(),
                                     path, ec.message()));
    return {};
}

// A write lock on the whole file, for this open file description.
int try_lock(int fd) noexcept {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    return detail::retry_eintr([&] { return ::fcntl(fd, F_OFD_SETLK, &fl); });
}

}  // namespace

std::optional<pid_t> read_pid_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    long long pid = 0;
    if (!(in >> pid) || pid <= 0 || pid > 4194304) return std::nullopt;
    return static_cast<pid_t>(pid);
}

result<void> write_pid_file(const std::string& path, pid_t pid) {
    unique_fd fd(detail::retry_eintr(
        [&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644); }));
    if (!fd) return error::from_errno(errno, fmt::format("cannot write pid file {}", path));
    std::string text = fmt::format("{}\n", pid);
    // One small write at offset 0, then the length: never a half-written number, and no
    // leftover digits of a longer content.
    ssize_t n =
        detail::retry_eintr([&] { return ::pwrite(fd.get(), text.data(), text.size(), 0); });
    if (n != static_cast<ssize_t>(text.size()) ||
        ::ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0) {
        int err = n < 0 ? errno : (errno != 0 ? errno : EIO);
        return error::from_errno(err, fmt::format("cannot write pid file {}", path));
    }
    return {};
}

bool is_live_instance(pid_t pid) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
    std::string theirs = read_comm(fmt::format("/proc/{}/comm", pid));
    return !theirs.empty() && theirs == read_comm("/proc/self/comm");
}

result<pid_file_lock> pid_file_lock::acquire(const std::string& path, const std::string& program) {
    if (auto r = create_folders(path); !r) return std::move(r).err();
    unique_fd fd(detail::retry_eintr(
        [&] { return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644); }));
    if (!fd) return error::from_errno(errno, fmt::format("cannot open pid file {}", path));
    if (try_lock(fd.get()) != 0) {
        int err = errno;
        if (err != EAGAIN && err != EACCES)
            return error::from_errno(err, fmt::format("cannot lock pid file {}", path));
        // An OFD lock does not say who holds it: the holder's pid is in the file once it is
        // ready, and empty while it starts.
        auto holder = read_pid_file(path);
        std::string who = holder ? fmt::format("already running as pid {}", *holder)
                                 : std::string("already running (starting up)");
        return error(std::make_error_code(std::errc::resource_unavailable_try_again),
                     fmt::format("{}: another {} holds the pid file {}", who, program, path));
    }
    pid_file_lock lock;
    lock.path_ = path;
    lock.fd_ = std::move(fd);
    // An older server that died without removing it, or one that never locked: say so
    // rather than take over a file a live server may still be named by.
    if (auto pid = read_pid_file(path); pid && *pid != ::getpid() && is_live_instance(*pid)) {
        lock.path_.clear();  // not ours: the destructor must leave it alone
        return error(fmt::format("already running as pid {} (pid file {})", *pid, path));
    }
    // Stale content names nobody: empty until write_pid_file, so `-s` meanwhile finds no pid
    // rather than a dead one.
    if (::ftruncate(lock.fd_.get(), 0) != 0)
        return error::from_errno(errno, fmt::format("cannot truncate pid file {}", path));
    return lock;
}

result<void> pid_file_lock::move_to(const std::string& path, pid_t pid,
                                    const std::string& program) {
    auto next = acquire(path, program);
    if (!next) return std::move(next).err();
    if (pid > 0) {
        if (auto r = write_pid_file(path, pid); !r) return std::move(r).err();  // next unlinks
    }
    if (still_ours()) ::unlink(path_.c_str());
    *this = std::move(*next);
    return {};
}

bool pid_file_lock::still_ours() const noexcept {
    if (!fd_ || path_.empty()) return false;
    struct stat held {
    }, named{};
    return ::fstat(fd_.get(), &held) == 0 && ::stat(path_.c_str(), &named) == 0 &&
           held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

pid_file_lock::~pid_file_lock() { remove_unless_another_holds_it(); }

void pid_file_lock::remove_unless_another_holds_it() noexcept {
    if (path_.empty() || !still_ours()) return;
    // After a clean stop the supervisor has removed it already; what is left is a failed
    // start's empty file, or our own pid.
    auto pid = read_pid_file(path_);
    if (!pid || *pid == ::getpid()) ::unlink(path_.c_str());
}

}  // namespace preforkd::sys
