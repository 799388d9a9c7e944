#include "sys/socket.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace preforkd::sys {
namespace {

struct sockaddr_any {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

result<sockaddr_any> to_sockaddr(const listen_address& a) {
    sockaddr_any out;
    switch (a.family) {
        case listen_address::family_t::inet4: {
            auto* sin = reinterpret_cast<sockaddr_in*>(&out.ss);
            sin->sin_family = AF_INET;
            sin->sin_port = htons(a.port);
            if (::inet_pton(AF_INET, a.host.c_str(), &sin->sin_addr) != 1)
                return error(fmt::format("bad IPv4 address {}", a.host));
            out.len = sizeof(sockaddr_in);
            break;
        }
        case listen_address::family_t::inet6: {
            auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(a.port);
            if (::inet_pton(AF_INET6, a.host.c_str(), &sin6->sin6_addr) != 1)
                return error(fmt::format("bad IPv6 address {}", a.host));
            out.len = sizeof(sockaddr_in6);
            break;
        }
        case listen_address::family_t::unix_path: {
            auto* sun = reinterpret_cast<sockaddr_un*>(&out.ss);
            sun->sun_family = AF_UNIX;
            if (a.path.size() >= sizeof(sun->sun_path))
                return error(fmt::format("unix socket path too long: {}", a.path));
            std::memcpy(sun->sun_path, a.path.data(), a.path.size());
            out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
            break;
        }
    }
    return out;
}

// A unix socket file that nobody accepts on is a leftover of a crashed server: remove it
// so bind() can succeed. One that answers belongs to a live server: leave it alone.
void remove_stale_unix_socket(const sockaddr_any& sa, const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
    unique_fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) return;
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sa.ss), sa.len) != 0 &&
        errno == ECONNREFUSED)
        ::unlink(path.c_str());
}

}  // namespace

result<unique_fd> bind_listener(const listen_address& addr, int backlog) {
    auto sa = to_sockaddr(addr);
    if (!sa) return std::move(sa).err();
    int domain = sa->ss.ss_family;
    unique_fd fd(::socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return error::from_errno(errno, "socket()");
    int one = 1;
    if (domain != AF_UNIX &&
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        return error::from_errno(errno, "SO_REUSEADDR");
    // "[::]:80" must not also grab 0.0.0.0:80: a separate "*:80" entry may want it.
    if (domain == AF_INET6 &&
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
        return error::from_errno(errno, "IPV6_V6ONLY");
    if (domain == AF_UNIX) remove_stale_unix_socket(*sa, addr.path);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa->ss), sa->len) != 0) {
        // The reason alone ("Address already in use"): the caller names the entry.
        std::error_code ec(errno, std::system_category());
        return error(ec, ec.message());
    }
    if (domain == AF_UNIX) {
        // Workers run unprivileged; clients of any user may connect, as with a TCP port.
        ::chmod(addr.path.c_str(), 0666);
    }
    if (::listen(fd.get(), backlog) != 0) {
        int err = errno;
        if (domain == AF_UNIX) ::unlink(addr.path.c_str());  // bound just now, by us
        return error::from_errno(err, "listen()");
    }
    return fd;
}

result<listen_address> bound_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return error::from_errno(errno, fmt::format("getsockname(fd {})", fd));
    listen_address a;
    char host[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        a.family = listen_address::family_t::inet4;
        a.host = host;
        a.port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        a.family = listen_address::family_t::inet6;
        a.host = host;
        a.port = ntohs(sin6->sin6_port);
    } else if (ss.ss_family == AF_UNIX) {
        auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
        a.family = listen_address::family_t::unix_path;
        size_t max =
            len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
        a.path.assign(sun->sun_path, ::strnlen(sun->sun_path, max));
    } else {
        return error(fmt::format("fd {} is not an inet or unix socket", fd));
    }
    return a;
}

}  // namespace preforkd::sys
