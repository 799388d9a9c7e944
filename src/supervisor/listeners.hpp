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

namespace preforkd {

struct listener {
    listen_address addr;
    unique_fd fd;
    bool inherited = false;  // adopted from a parent (upgrade, systemd), not bound by us
};

using listener_list = std::vector<std::shared_ptr<listener>>;

// Sockets handed to this process by its parent, by canonical address.
using inherited_sockets = std::map<std::string, int>;

// One socket per address of `wanted`, in the same order: reused from `current` when the
// address is already open there, else adopted from `inherited`, else bound now. On error
// nothing newly bound is kept (they close with the partial list).
result<listener_list> open_listeners(const std::vector<listen_address>& wanted, int backlog,
                                     const listener_list& current, inherited_sockets& inherited);

}  // namespace preforkd
