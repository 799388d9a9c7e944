#include "sys/inherited_sockets.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "sys/socket.hpp"
#include "sys/systemd.hpp"

namespace preforkd::sys {

std::string format_listeners_env(const std::vector<std::pair<int, std::string>>& fds) {
    std::string s;
    for (const auto& [fd, addr] : fds) {
        if (!s.empty()) s += ';';
        s += fmt::format("{}:{}", fd, addr);
    }
    return s;
}

namespace {

bool is_listening_socket(int fd) {
    int val = 0;
    socklen_t len = sizeof(val);
    return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == 0 && val == 1;
}

void adopt(inheritance& in, int fd, socket_origin origin, std::string_view claimed) {
    if (!is_listening_socket(fd)) {
        in.warnings.push_back(
            fmt::format("inherited fd {} is not a listening socket: ignored", fd));
        return;
    }
    auto addr = bound_address(fd);
    if (!addr) {
        in.warnings.push_back(addr.err().message);
        return;
    }
    std::string name = addr->to_string();
    if (!claimed.empty() && claimed != name)
        in.warnings.push_back(fmt::format("inherited fd {} was announced as {} but is bound to {}",
                                          fd, claimed, name));
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    in.sockets[name] = fd;
    in.origin[fd] = origin;
}

}  // namespace

inheritance take_inherited_sockets() {
    inheritance in;
    if (const char* env = std::getenv(listeners_env)) {
        in.upgrade = true;
        std::string_view rest(env);
        while (!rest.empty()) {
            size_t end = rest.find(';');
            std::string_view item = rest.substr(0, end);
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
            size_t colon = item.find(':');
            int fd = std::atoi(std::string(item.substr(0, colon)).c_str());
            if (colon == std::string_view::npos || fd < 3) {
                in.warnings.push_back(fmt::format("{}: bad entry '{}'", listeners_env, item));
                continue;
            }
            adopt(in, fd, socket_origin::upgrade, item.substr(colon + 1));
        }
        ::unsetenv(listeners_env);
    }
    for (int fd : socket_activation_fds()) adopt(in, fd, socket_origin::systemd, {});
    return in;
}

}  // namespace preforkd::sys
