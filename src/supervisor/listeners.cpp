#include "supervisor/listeners.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <preforkd/detail/text.hpp>
#include <string>

#include "core/config_lines.hpp"
#include "sys/socket.hpp"

namespace preforkd {

result<listener_list> open_listeners(const config& cfg, const listener_list& current,
                                     sys::inheritance& inherited) {
    const std::vector<listen_address>& wanted = cfg.server.listen;
    const int backlog = cfg.server.backlog;
    listener_list out;
    // Unix socket files this call made: a failed start or reload takes them away again, so
    // it leaves the file system as it found it (and a retry does not meet a stale socket).
    std::vector<std::string> made;
    for (size_t i = 0; i < wanted.size(); ++i) {
        const listen_address& addr = wanted[i];
        std::shared_ptr<listener> found;
        for (const auto& l : current)
            if (same_socket(l->addr, addr)) found = l;
        if (found) {
            // Same socket; a changed backlog applies to it at once (listen() again is allowed).
            // Changed flags need nothing here: workers read them from their generation's
            // config (server.listen[i]), never from the shared listener.
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
            if (!fd) {
                for (const std::string& path : made) ::unlink(path.c_str());
                // `file:line: server.listen[N] "addr": Address already in use`
                return error(fd.err().code, detail::listen_site(cfg, i) + " \"" +
                                                detail::hex_escaped(addr.to_string()) +
                                                "\": " + fd.err().message);
            }
            l->fd = std::move(*fd);
            if (addr.family == listen_address::family_t::unix_path) made.push_back(addr.path);
        }
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace preforkd
