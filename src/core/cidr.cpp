#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <preforkd/detail/cidr.hpp>
#include <preforkd/detail/text.hpp>
#include <string>

namespace preforkd::detail {

result<cidr> parse_cidr(std::string_view text) {
    cidr c;
    std::string_view addr = text;
    std::string_view prefix;
    const size_t slash = text.find('/');
    if (slash != std::string_view::npos) {
        addr = text.substr(0, slash);
        prefix = text.substr(slash + 1);
    }
    // inet_pton needs a NUL-terminated string; the longest address text is 45 characters.
    char buf[INET6_ADDRSTRLEN + 1];
    if (addr.size() >= sizeof buf)
        return error("\"" + hex_escaped(text, "\"") +
                     "\" is not an address block (a.b.c.d/n or v6/n)");
    std::copy(addr.begin(), addr.end(), buf);
    buf[addr.size()] = '\0';
    if (::inet_pton(AF_INET, buf, c.addr.data()) == 1) {
        c.bits = 32;
    } else if (::inet_pton(AF_INET6, buf, c.addr.data()) == 1) {
        c.v6 = true;
        c.bits = 128;
    } else {
        return error("\"" + hex_escaped(text, "\"") +
                     "\" is not an address block (a.b.c.d/n or v6/n)");
    }
    if (slash != std::string_view::npos) {
        unsigned n = 0;
        auto [p, ec] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), n);
        if (prefix.empty() || ec != std::errc{} || p != prefix.data() + prefix.size() || n > c.bits)
            return error("\"" + hex_escaped(text, "\"") + "\": the prefix length must be 0 to " +
                         std::to_string(c.bits));
        c.bits = n;
    }
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned keep = c.bits > i * 8 ? std::min(8u, c.bits - i * 8) : 0;
        c.addr[i] &= static_cast<uint8_t>(0xff00u >> keep);
    }
    return c;
}

bool cidr_contains(const cidr& block, const sockaddr_storage& peer) noexcept {
    const uint8_t* bytes = nullptr;
    bool v6 = false;
    if (peer.ss_family == AF_INET) {
        bytes = reinterpret_cast<const uint8_t*>(
            &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr);
    } else if (peer.ss_family == AF_INET6) {
        const in6_addr* a = &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr;
        bytes = reinterpret_cast<const uint8_t*>(a);
        v6 = !IN6_IS_ADDR_V4MAPPED(a);
        if (!v6) bytes += 12;
    } else {
        return false;
    }
    if (v6 != block.v6) return false;
    unsigned bits = block.bits;
    for (unsigned i = 0; bits > 0; ++i) {
        const unsigned take = std::min(8u, bits);
        const auto mask = static_cast<uint8_t>(0xff00u >> take);
        if ((bytes[i] & mask) != block.addr[i]) return false;
        bits -= take;
    }
    return true;
}

bool trusted(const sockaddr_storage& peer, const std::vector<cidr>& list) noexcept {
    return std::any_of(list.begin(), list.end(),
                       [&](const cidr& c) { return cidr_contains(c, peer); });
}

}  // namespace preforkd::detail
