#include "supervisor/listeners.hpp"

#include <sys/socket.h>

#include "sys/socket.hpp"

namespace preforkd {

result<listener_list> open_listeners(const std::vector<listen_address>& wanted, int backlog,
                                     const listener_list& current, sys::inheritance& inherited) {
    listener_list out;
    for (const auto& addr : wanted) {
        std::shared_ptr<listener> found;
        for (const auto& l : current)
            if (l->addr == addr) found = l;
        if (found) {
            // Same socket; a changed backlog applies to it at once (listen() again is allowed).
            ::listen(found->fd.get(), backlog);
            out.push_back(found);
            continue;
        }
        auto l = std::make_shared<listener>();
        l->addr = addr;
        if (auto it = inherited.sockets.find(addr.to_string()); it != inherited.sockets.end()) {
            l->fd.reset(it->second);
            l->origin = inherited.origin[it->second];
            // Our backlog, not the one the socket was created with.
            ::listen(l->fd.get(), backlog);
            inherited.sockets.erase(it);
        } else {
            auto fd = sys::bind_listener(addr, backlog);
            if (!fd) return std::move(fd).err();
            l->fd = std::move(*fd);
        }
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace preforkd
