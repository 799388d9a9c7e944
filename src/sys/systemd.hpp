// systemd integration through Debian's libsystemd: readiness notification (Type=notify)
// and socket activation. Built without it (PREFORKD_SYSTEMD=OFF), both are no-ops.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace preforkd::sys {

// True when built with libsystemd.
bool systemd_support() noexcept;

// sd_notify(): "READY=1", "RELOADING=1", "STOPPING=1", "MAINPID=…", "STATUS=…".
// Does nothing when not started by systemd (no NOTIFY_SOCKET).
void notify(const std::string& state) noexcept;

// Sockets passed by systemd (LISTEN_FDS/LISTEN_PID), made non-blocking and close-on-exec.
// The variables are unset so that nothing forked or executed later takes them again.
std::vector<int> socket_activation_fds() noexcept;

}  // namespace preforkd::sys
