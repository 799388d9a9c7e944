#include "sys/daemon.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <preforkd/detail/syscall.hpp>
#include <string>

namespace preforkd::sys {
namespace {

void write_all(int fd, std::string_view s) noexcept {
    // Nowhere to report a failure to: the message is lost with the terminal.
    (void)detail::write_all(fd, s.data(), s.size());
}

// The original process: wait for the daemon's word. EOF without "ok" means it died. The
// reason goes to the terminal as every other start-up error does: `program: reason`.
[[noreturn]] void wait_for_daemon(int read_fd, const std::string& program) {
    std::string got;
    char buf[512];
    for (;;) {
        ssize_t n = detail::retry_eintr([&] { return ::read(read_fd, buf, sizeof(buf)); });
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    if (got == "ok") ::_exit(0);
    if (got.empty()) got = "the daemon exited during start-up (see the error log)";
    std::string line = program + ": " + got;
    if (line.back() != '\n') line += '\n';
    write_all(2, line);
    ::_exit(1);
}

}  // namespace

void daemon_handshake::ready() noexcept {
    if (!fd_) return;
    write_all(fd_.get(), "ok");
    fd_.reset();
}

void daemon_handshake::failed(std::string_view message) noexcept {
    if (!fd_) return;
    write_all(fd_.get(), message.empty() ? std::string_view("start-up failed") : message);
    fd_.reset();
}

result<daemon_handshake> daemonize(const std::string& program) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return error::from_errno(errno, "pipe2");
    unique_fd rd(fds[0]), wr(fds[1]);
    std::fflush(nullptr);

    pid_t first = ::fork();
    if (first < 0) return error::from_errno(errno, "fork");
    if (first > 0) {
        wr.reset();
        int status = 0;
        (void)detail::retry_eintr([&] { return ::waitpid(first, &status, 0); });
        wait_for_daemon(rd.get(), program);
    }
    rd.reset();
    if (::setsid() < 0) ::_exit(1);
    pid_t second = ::fork();
    if (second < 0) ::_exit(1);
    if (second > 0) ::_exit(0);

    if (::chdir("/") != 0) {
        // "/" always exists; nothing sensible to do otherwise.
    }
    ::umask(022);
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        if (null > 2) ::close(null);
    }
    return daemon_handshake(std::move(wr));
}

}  // namespace preforkd::sys
