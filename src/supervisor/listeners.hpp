// The listening sockets of a generation. A socket whose address survives a reload is
// shared by both generations: the very same socket, so its accept queue never closes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <preforkd/config.hpp>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>

#include "sys/inherited_sockets.hpp"

namespace preforkd {

struct listener {
    listen_address addr;
    unique_fd fd;
    sys::socket_origin origin = sys::socket_origin::bound;
};

using listener_list = std::vector<std::shared_ptr<listener>>;

// One socket per address of `wanted`, in the same order: reused from `current` when the
// address is already open there, else adopted from `inherited` (and removed from it), else
// bound now. On error nothing newly bound is kept (they close with the partial list).
result<listener_list> open_listeners(const std::vector<listen_address>& wanted, int backlog,
                                     const listener_list& current, sys::inheritance& inherited);

}  // namespace preforkd
