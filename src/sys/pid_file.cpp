#include "sys/pid_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include <preforkd/unique_fd.hpp>

namespace preforkd::sys {
namespace {

std::string read_comm(const std::string& proc_path) {
    std::ifstream in(proc_path);
    std::string s;
    std::getline(in, s);
    return s;
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
    std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return error::from_errno(errno, fmt::format("cannot write pid file {}", tmp));
    std::string text = fmt::format("{}\n", pid);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        int err = errno;
        ::unlink(tmp.c_str());
        return error::from_errno(err, fmt::format("cannot write pid file {}", tmp));
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return error::from_errno(err, fmt::format("cannot rename {} to {}", tmp, path));
    }
    return {};
}

bool is_live_instance(pid_t pid) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
    std::string theirs = read_comm(fmt::format("/proc/{}/comm", pid));
    return !theirs.empty() && theirs == read_comm("/proc/self/comm");
}

}  // namespace preforkd::sys
