// Daemon mode with a start-up handshake: the command that started preforkd returns only
// once the daemon serves (exit 0) or has failed (exit 1, with the reason on stderr), so
// scripts and init systems see the truth instead of a hopeful 0.
#pragma once

#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>

namespace preforkd::sys {

class daemon_handshake {
  public:
    daemon_handshake() = default;
    explicit daemon_handshake(unique_fd fd) : fd_(std::move(fd)) {}
    bool active() const noexcept { return fd_.valid(); }
    // The server is up: the waiting parent exits 0.
    void ready() noexcept;
    // Start-up failed: the waiting parent prints `message` and exits 1.
    void failed(std::string_view message) noexcept;
    // Children must not hold the pipe: a worker outliving a failed supervisor would keep
    // the parent waiting.
    void close_in_child() noexcept { fd_.reset(); }

  private:
    unique_fd fd_;
};

// fork, setsid, fork again (never a session leader: no controlling tty can come back),
// chdir /, umask 022, stdin/stdout/stderr to /dev/null. Returns only in the daemon;
// the original process waits for the handshake and exits, printing a failure as
// `program: reason`.
result<daemon_handshake> daemonize(const std::string& program);

}  // namespace preforkd::sys
