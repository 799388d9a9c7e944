// The listening sockets of a generation. A socket whose address survives a reload is
// shared by both generations: the very same socket, so its accept queue never closes.
#pragma once

#include <map>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <vector>

#include "sys/inherited_sockets.hpp"

namespace preforkd {

struct listener {
    // The entry that opened the socket. Its flags may be stale once a reload changed them on
    // the same address: the flags in force are the generation's config.server.listen[i].
    listen_address addr;
    unique_fd fd;
    sys::socket_origin origin = sys::socket_origin::bound;
};

using listener_list = std::vector<std::shared_ptr<listener>>;

// One socket per address of cfg.server.listen, in the same order: reused from `current` when
// the address is already open there, else adopted from `inherited` (and removed from it),
// else bound now (with cfg.server.backlog). On error nothing newly bound is kept: the sockets
// close with the partial list, and the unix socket files this call made are removed. The
// error names the entry: `file:line: server.listen[N] "addr": Address already in use`.
result<listener_list> open_listeners(const config& cfg, const listener_list& current,
                                     sys::inheritance& inherited);

}  // namespace preforkd
