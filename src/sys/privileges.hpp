// Who the workers run as. Resolved in the supervisor (at start and reload), applied by
// each worker right after fork, before it touches a request.
#pragma once

#include <sys/types.h>

#include <preforkd/config.hpp>
#include <preforkd/result.hpp>
#include <string>

namespace preforkd::sys {

struct credentials {
    bool change = false;  // false: workers keep the supervisor's identity
    uid_t uid = 0;
    gid_t gid = 0;
    std::string user;  // names, for the logs
    std::string group;
};

// Started as root: server.user ("" = nobody) and server.group ("" = the user's primary
// group). Started as anyone else: the workers stay that user; asking for another is an error.
// Errors are one `file:line: server.user ...` line, from cfg.path and the keys' lines.
result<credentials> resolve_credentials(const config& cfg);

// initgroups (the user's supplementary groups) + setgid + setuid, then proves root cannot
// come back.
result<void> drop_privileges(const credentials& creds) noexcept;

}  // namespace preforkd::sys
