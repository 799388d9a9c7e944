// Address blocks ("192.0.2.0/24", "2001:db8::/32", or one address) and the matcher behind every
// allow list: server.proxy_trusted (the engine) and http.status_allow (the HTTP service).
// In detail/ rather than src/core: the HTTP service compiles against include/ only, and both
// must agree on what "127.0.0.1/32" means. Compiled into the engine (src/core/cidr.cpp).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <preforkd/result.hpp>
#include <string_view>
#include <vector>

namespace preforkd::detail {

struct cidr {
    bool v6 = false;
    std::array<uint8_t, 16> addr{};  // IPv4 uses the first 4 bytes; host bits are cleared
    unsigned bits = 0;

    friend bool operator==(const cidr&, const cidr&) = default;
};

// "a.b.c.d/n", "v6/n", or one address (a /32 or /128). Host bits are cleared, as nginx and
// Apache do, so "10.1.2.3/8" means 10.0.0.0/8.
result<cidr> parse_cidr(std::string_view text);

// Whether `peer` lies in `block`. An IPv4-mapped IPv6 peer (::ffff:a.b.c.d, from a dual-stack
// listener) is matched as IPv4. Unix-socket and unspecified peers match nothing.
bool cidr_contains(const cidr& block, const sockaddr_storage& peer) noexcept;

// Whether any block of `list` contains `peer`: server.proxy_trusted, http.status_allow.
bool trusted(const sockaddr_storage& peer, const std::vector<cidr>& list) noexcept;

}  // namespace preforkd::detail
