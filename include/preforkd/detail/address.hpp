// Printing a socket address: the one place that calls inet_ntop for a peer or a bound socket.
// Internal to preforkd (namespace detail).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace preforkd::detail {

// The host part: "192.0.2.1", "2001:db8::1" (no brackets), a v4-mapped IPv6 address as its
// IPv4 form (what a dual-stack listener's peers look like), "unix" for a unix socket.
// Writes a NUL-terminated string into `out` and returns its length; never allocates.
inline size_t format_host(const sockaddr_storage& ss, char (&out)[INET6_ADDRSTRLEN]) noexcept {
    out[0] = '\0';
    if (ss.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, out, sizeof out);
    } else if (ss.ss_family == AF_INET6) {
        const in6_addr* a = &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            ::inet_ntop(AF_INET, reinterpret_cast<const uint8_t*>(a) + 12, out, sizeof out);
        else
            ::inet_ntop(AF_INET6, a, out, sizeof out);
    } else {
        std::memcpy(out, "unix", 5);
    }
    return std::strlen(out);
}

// The port, or 0 for a unix socket.
inline uint16_t address_port(const sockaddr_storage& ss) noexcept {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

// "192.0.2.1:80", "[2001:db8::1]:80", or "unix" / "unix:/path" (the path when `len` holds
// one: a bound socket; an accepted unix peer has none).
inline std::string format_address(const sockaddr_storage& ss, socklen_t len = 0) {
    char host[INET6_ADDRSTRLEN];
    format_host(ss, host);
    if (ss.ss_family == AF_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr))
        return "[" + std::string(host) + "]:" + std::to_string(address_port(ss));
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
        return std::string(host) + ":" + std::to_string(address_port(ss));
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
    const size_t base = offsetof(sockaddr_un, sun_path);
    if (ss.ss_family == AF_UNIX && len > base && sun->sun_path[0] != '\0')
        return "unix:" + std::string(sun->sun_path, ::strnlen(sun->sun_path, len - base));
    return "unix";
}

}  // namespace preforkd::detail
