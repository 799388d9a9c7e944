#include "http/access_log.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace preforkd::http {

namespace {

void append_escaped(std::string& out, std::string_view s) {
    if (s.empty()) {
        out.push_back('-');
        return;
    }
    static constexpr char hex[] = "0123456789abcdef";
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20 || c >= 0x7f) {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            out.append(esc, 4);
        } else {
            out.push_back(ch);
        }
    }
}

void append_number(std::string& out, uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace

void format_access_line(const access_record& r, std::string& out) {
    out.append(r.client.empty() ? std::string_view("-") : r.client);
    out.append(" - - [");
    out.append(r.time);
    out.append("] \"");
    append_escaped(out, r.request_line);
    out.append("\" ");
    append_number(out, static_cast<uint64_t>(r.status));
    out.push_back(' ');
    if (r.body_bytes == 0)
        out.push_back('-');
    else
        append_number(out, r.body_bytes);
    out.append(" \"");
    append_escaped(out, r.referer);
    out.append("\" \"");
    append_escaped(out, r.user_agent);
    out.append("\"\n");
}

size_t format_peer(const sockaddr_storage& peer, char (&out)[64]) noexcept {
    out[0] = '\0';
    if (peer.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, out,
                    sizeof out);
    } else if (peer.ss_family == AF_INET6) {
        const in6_addr* a = &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            ::inet_ntop(AF_INET, reinterpret_cast<const uint8_t*>(a) + 12, out, sizeof out);
        else
            ::inet_ntop(AF_INET6, a, out, sizeof out);
    } else {
        std::memcpy(out, "unix", 5);
    }
    return std::strlen(out);
}

}  // namespace preforkd::http
