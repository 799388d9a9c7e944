// Listening sockets a new process inherits instead of binding: from the supervisor it
// replaces (binary upgrade, USR2) or from systemd (socket activation).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace preforkd::sys {

// fd:address pairs separated by ';', e.g. "3:127.0.0.1:8080;4:[::1]:8080;5:unix:/run/p.sock".
inline constexpr const char* listeners_env = "PREFORKD_LISTENERS";

std::string format_listeners_env(const std::vector<std::pair<int, std::string>>& fds);

enum class socket_origin { bound, upgrade, systemd };

struct inheritance {
    std::map<std::string, int> sockets;   // canonical address -> fd
    std::map<int, socket_origin> origin;  // fd -> where it came from
    bool upgrade = false;                 // started by a supervisor's USR2
    std::vector<std::string> warnings;    // for the log, once it is open
};

// Takes (and unsets) PREFORKD_LISTENERS and systemd's LISTEN_FDS. Each socket's address
// is read from the socket itself: the variable is a claim, getsockname() is the truth.
inheritance take_inherited_sockets();

}  // namespace preforkd::sys
