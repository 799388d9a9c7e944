#include "core/proxy_protocol.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace preforkd {

namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

proxy_result invalid(uint8_t version, const char* why) noexcept {
    proxy_result r;
    r.status = proxy_status::invalid;
    r.version = version;
    r.reason = why;
    return r;
}

proxy_result need_more(uint8_t version) noexcept {
    proxy_result r;
    r.version = version;
    return r;
}

// Whether the `size` bytes at `data` agree with the first bytes of `expected`.
bool prefix_matches(const uint8_t* data, size_t size, const uint8_t* expected,
                    size_t expected_size) noexcept {
    return std::memcmp(data, expected, std::min(size, expected_size)) == 0;
}

// A v1 port: 0..65535 in decimal, without sign or leading zero (one spelling per port).
bool parse_port(std::string_view s, uint16_t& port) noexcept {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
    uint32_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v > 65535) return false;
    port = static_cast<uint16_t>(v);
    return true;
}

// inet_pton wants a NUL-terminated string; the fields are bounded by the 107-byte line.
bool parse_ip(int family, std::string_view s, void* out) noexcept {
    char buf[INET6_ADDRSTRLEN + 1];
    if (s.empty() || s.size() >= sizeof buf) return false;
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    return ::inet_pton(family, buf, out) == 1;
}

void set_inet(sockaddr_storage& ss, const void* addr4, uint16_t port) noexcept {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, addr4, 4);
    sin->sin_port = htons(port);
}

void set_inet6(sockaddr_storage& ss, const void* addr16, uint16_t port) noexcept {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, addr16, 16);
    sin6->sin6_port = htons(port);
}

// Splits off the next field ending at a single space; false when there is none.
bool next_field(std::string_view& rest, std::string_view& field) noexcept {
    const size_t sp = rest.find(' ');
    if (sp == std::string_view::npos || sp == 0) return false;
    field = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
    return true;
}

proxy_result parse_v1(const uint8_t* data, size_t size) noexcept {
    const auto* text = reinterpret_cast<const char*>(data);
    const std::string_view seen(text, std::min(size, proxy_v1_max));
    const size_t lf = seen.find('\n');
    if (lf == std::string_view::npos) {
        // No CR or LF may appear before the final CRLF: a stray CR is garbage, not progress.
        const size_t cr = seen.find('\r');
        if (cr != std::string_view::npos && cr + 1 < seen.size())
            return invalid(1, "v1 header has a bare CR");
        if (size >= proxy_v1_max) return invalid(1, "v1 header longer than 107 bytes");
        return need_more(1);
    }
    if (lf == 0 || seen[lf - 1] != '\r') return invalid(1, "v1 header has a bare LF");
    const std::string_view line = seen.substr(0, lf - 1);  // without CRLF
    if (line.find('\r') != std::string_view::npos) return invalid(1, "v1 header has a bare CR");
    std::string_view rest = line.substr(v1_prefix.size());

    proxy_result r;
    r.status = proxy_status::done;
    r.version = 1;
    r.consumed = lf + 1;
    // "UNKNOWN" may be followed by anything up to the CRLF, which is ignored (section 2.1).
    if (rest == "UNKNOWN" || rest.starts_with("UNKNOWN ")) {
        r.local = true;
        return r;
    }
    std::string_view proto, src, dst, sport;
    if (!next_field(rest, proto)) return invalid(1, "v1 header has no protocol");
    int family = 0;
    if (proto == "TCP4")
        family = AF_INET;
    else if (proto == "TCP6")
        family = AF_INET6;
    else
        return invalid(1, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
    if (!next_field(rest, src) || !next_field(rest, dst) || !next_field(rest, sport))
        return invalid(1, "v1 header has too few fields");
    const std::string_view dport = rest;  // the last field ends at the CRLF
    uint8_t src_addr[16], dst_addr[16];
    uint16_t src_port = 0, dst_port = 0;
    if (!parse_ip(family, src, src_addr)) return invalid(1, "v1 source address is malformed");
    if (!parse_ip(family, dst, dst_addr)) return invalid(1, "v1 destination address is malformed");
    if (!parse_port(sport, src_port)) return invalid(1, "v1 source port is malformed");
    if (!parse_port(dport, dst_port)) return invalid(1, "v1 destination port is malformed");
    if (family == AF_INET) {
        set_inet(r.source, src_addr, src_port);
        set_inet(r.destination, dst_addr, dst_port);
    } else {
        set_inet6(r.source, src_addr, src_port);
        set_inet6(r.destination, dst_addr, dst_port);
    }
    return r;
}

uint16_t be16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

void set_unix(sockaddr_storage& ss, const uint8_t* path108) noexcept {
    auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
    sun->sun_family = AF_UNIX;
    static_assert(sizeof sun->sun_path == 108);
    std::memcpy(sun->sun_path, path108, 108);
}

proxy_result parse_v2(const uint8_t* data, size_t size) noexcept {
    if (size < 16) return need_more(2);
    const uint8_t ver_cmd = data[12];
    const uint8_t fam = data[13];
    const size_t len = be16(data + 14);
    // Checked before waiting for the body: garbage is refused at once, not after len bytes.
    if ((ver_cmd >> 4) != 2) return invalid(2, "v2 version is not 2");
    const uint8_t command = ver_cmd & 0x0F;
    if (command > 1) return invalid(2, "v2 command is neither LOCAL nor PROXY");
    const uint8_t af = fam >> 4;
    const uint8_t transport = fam & 0x0F;
    if (af > 3) return invalid(2, "v2 address family is unknown");
    if (transport > 2) return invalid(2, "v2 transport protocol is unknown");
    if (16 + len > proxy_v2_max) return invalid(2, "v2 header longer than we accept");
    // The address block must hold the addresses its family announces (section 2.2).
    static constexpr size_t address_size[4] = {0, 12, 36, 216};
    if (command == 1 && af != 0 && transport == 2)
        return invalid(2, "v2 header announces a datagram on a stream");
    if (command == 1 && transport != 0 && len < address_size[af])
        return invalid(2, "v2 header too short for its addresses");
    if (size < 16 + len) return need_more(2);

    proxy_result r;
    r.status = proxy_status::done;
    r.version = 2;
    r.consumed = 16 + len;  // TLVs after the addresses are skipped
    // LOCAL: the balancer speaking for itself (health checks); the address block, if any, is
    // ignored. UNSPEC family or protocol: the sender does not know, keep the peer's address.
    if (command == 0 || af == 0 || transport == 0) {
        r.local = true;
        return r;
    }
    const uint8_t* a = data + 16;
    if (af == 1) {
        set_inet(r.source, a, be16(a + 8));
        set_inet(r.destination, a + 4, be16(a + 10));
    } else if (af == 2) {
        set_inet6(r.source, a, be16(a + 32));
        set_inet6(r.destination, a + 16, be16(a + 34));
    } else {
        set_unix(r.source, a);
        set_unix(r.destination, a + 108);
    }
    return r;
}

}  // namespace

proxy_result parse_proxy_header(const uint8_t* data, size_t size) noexcept {
    if (size == 0) return need_more(0);
    // The two signatures differ in their first byte ('P' vs CR), so one byte picks the version.
    if (data[0] == static_cast<uint8_t>('P')) {
        if (!prefix_matches(data, size, reinterpret_cast<const uint8_t*>(v1_prefix.data()),
                            v1_prefix.size()))
            return invalid(0, "no PROXY protocol header");
        if (size < v1_prefix.size()) return need_more(1);
        return parse_v1(data, size);
    }
    if (!prefix_matches(data, size, v2_signature, sizeof v2_signature))
        return invalid(0, "no PROXY protocol header");
    if (size < sizeof v2_signature) return need_more(2);
    return parse_v2(data, size);
}

}  // namespace preforkd
