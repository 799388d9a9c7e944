// Listen entries and durations: the two value syntaxes of the config that are not plain TOML.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <preforkd/config.hpp>
#include <string>
#include <string_view>

#include "core/config_reader.hpp"

namespace preforkd {

namespace {

// sun_path holds the path and its terminating NUL.
constexpr size_t max_unix_path = sizeof(sockaddr_un::sun_path) - 1;

std::string quoted(std::string_view text) { return '"' + detail::hex_escaped(text) + '"'; }

// The IPv4 spelling of an IPv4-mapped IPv6 address (::ffff:a.b.c.d), for the message that
// refuses it.
std::string mapped_ipv4(const in6_addr& a) {
    in_addr v4{};
    static_assert(sizeof v4 == 4);
    std::copy(a.s6_addr + 12, a.s6_addr + 16, reinterpret_cast<unsigned char*>(&v4));
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &v4, buf, sizeof buf);
    return buf;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

result<uint16_t> parse_port(std::string_view text, std::string_view port) {
    if (port.empty()) return error(quoted(text) + " has no port (write host:port)");
    if (!all_digits(port)) {
        return error(quoted(text) + " has a bad port \"" + detail::hex_escaped(port) +
                     "\" (digits 1..65535)");
    }
    uint32_t value = 0;
    for (char c : port) {
        value = value * 10 + static_cast<uint32_t>(c - '0');
        // Bail out early so a hundred digits cannot wrap around into a valid port.
        if (value > 65535) break;
    }
    if (value < 1 || value > 65535) {
        return error(quoted(text) + " has port " + detail::hex_escaped(port) +
                     ", out of range 1..65535");
    }
    return static_cast<uint16_t>(value);
}

// The address part of an entry, without flags.
result<listen_address> parse_socket_address(std::string_view text);

}  // namespace

std::string listen_address::to_string() const {
    switch (family) {
        case family_t::inet4:
            return host + ':' + std::to_string(port);
        case family_t::inet6:
            return '[' + host + "]:" + std::to_string(port);
        case family_t::unix_path:
            return "unix:" + path;
    }
    return {};
}

std::string listen_address::flags_string() const {
    std::string out;
    if (tls) out += " tls";
    if (proxy) out += " proxy";
    return out;
}

std::pair<std::string_view, std::string_view> split_listen_entry(std::string_view text) {
    size_t blank = text.find_first_of(" \t");
    if (blank == std::string_view::npos) return {text, {}};
    return {text.substr(0, blank), text.substr(blank + 1)};
}

result<void> parse_listen_flags(std::string_view flags, listen_address& out) {
    out.tls = false;
    out.proxy = false;
    size_t i = 0;
    while (i < flags.size()) {
        if (flags[i] == ' ' || flags[i] == '\t') {
            ++i;
            continue;
        }
        size_t end = flags.find_first_of(" \t", i);
        if (end == std::string_view::npos) end = flags.size();
        std::string_view word = flags.substr(i, end - i);
        i = end;
        bool* flag = word == "tls" ? &out.tls : word == "proxy" ? &out.proxy : nullptr;
        if (flag == nullptr) {
            return error("has an unknown flag " + quoted(word) + " (flags: tls, proxy)");
        }
        if (*flag) return error("repeats the flag " + quoted(word));
        *flag = true;
    }
    return {};
}

result<listen_address> parse_listen_address(std::string_view entry) {
    auto [text, flags] = split_listen_entry(entry);
    auto out = parse_socket_address(text);
    if (!out) return out;
    if (auto f = parse_listen_flags(flags, *out); !f) {
        return error(quoted(entry) + ' ' + f.err().message);
    }
    return out;
}

namespace {

result<listen_address> parse_socket_address(std::string_view text) {
    listen_address out;
    if (text.empty()) return error("\"\" is not a listen address (use host:port or unix:/path)");

    constexpr std::string_view unix_prefix = "unix:";
    if (text.substr(0, unix_prefix.size()) == unix_prefix) {
        std::string_view p = text.substr(unix_prefix.size());
        if (p.empty() || p.front() != '/') {
            return error(quoted(text) + " must name an absolute path (unix:/run/x.sock)");
        }
        if (p.find('\0') != std::string_view::npos) {
            return error(quoted(text) + " contains a NUL byte");
        }
        // One socket, one spelling: "unix://x.sock" and "unix:/a/../x.sock" are "unix:/x.sock",
        // so the duplicate check and reload's "same socket" comparison see through them.
        std::string path = std::filesystem::path(p).lexically_normal().string();
        if (path.back() == '/') {
            return error(quoted(text) + " names a folder, not a socket file (unix:/run/x.sock)");
        }
        if (path.size() > max_unix_path) {
            return error(quoted(text) + " is too long for a unix socket (at most " +
                         std::to_string(max_unix_path) + " bytes of path)");
        }
        out.family = listen_address::family_t::unix_path;
        out.path = std::move(path);
        return out;
    }

    std::string_view host;
    std::string_view port;
    if (text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos) return error(quoted(text) + " has no closing ']'");
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            return error(quoted(text) + " has no port (write [address]:port)");
        }
        port = rest.substr(1);
        in6_addr addr{};
        // std::string: inet_pton wants a NUL-terminated string, and an embedded NUL must
        // not let "::1\0junk" pass.
        std::string h(host);
        if (h.find('\0') != std::string::npos || ::inet_pton(AF_INET6, h.c_str(), &addr) != 1) {
            return error(quoted(text) + " has a bad IPv6 address \"" + detail::hex_escaped(host) +
                         '"');
        }
        auto p = parse_port(text, port);
        if (!p) return std::move(p).err();
        if (IN6_IS_ADDR_V4MAPPED(&addr)) {
            // Listeners are IPv6-only (so "[::]:80" and "*:80" can coexist), and an IPv6-only
            // socket cannot bind a mapped address: refused here rather than at bind time.
            // Not rewritten to IPv4 either: the file should say which family it binds.
            return error(quoted(text) + " is an IPv4-mapped address, which an IPv6-only " +
                         "listener cannot bind: write " + mapped_ipv4(addr) + ':' +
                         std::to_string(*p));
        }
        char buf[INET6_ADDRSTRLEN];
        ::inet_ntop(AF_INET6, &addr, buf, sizeof buf);
        out.family = listen_address::family_t::inet6;
        out.host = buf;
        out.port = *p;
        return out;
    }

    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return error(quoted(text) + " has no port (write host:port, e.g. 127.0.0.1:8080)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
        return error(quoted(text) + " looks like an IPv6 address: put it in brackets ([::1]:8080)");
    }
    if (host.empty()) {
        return error(quoted(text) + " has no host (use *:port for every address)");
    }
    auto p = parse_port(text, port);
    if (!p) return std::move(p).err();

    out.family = listen_address::family_t::inet4;
    out.port = *p;
    if (host == "*") {
        out.host = "0.0.0.0";
        return out;
    }
    if (host == "localhost") {
        // The one name we know without asking DNS; it means IPv4 loopback as in /etc/hosts.
        out.host = "127.0.0.1";
        return out;
    }
    bool numeric = std::all_of(host.begin(), host.end(),
                               [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    in_addr addr{};
    std::string h(host);
    if (!numeric) {
        // Resolving at start would make start-up depend on DNS, and a name can have many
        // addresses: say which address to bind.
        return error(quoted(text) + " names a host; use a numeric address, localhost or * " +
                     "(names are not resolved)");
    }
    if (::inet_pton(AF_INET, h.c_str(), &addr) != 1) {
        return error(quoted(text) + " has a bad IPv4 address \"" + detail::hex_escaped(host) + '"');
    }
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &addr, buf, sizeof buf);
    out.host = buf;
    return out;
}

}  // namespace

result<milliseconds> parse_duration(std::string_view text) {
    auto bad = [&] {
        return error(quoted(text) +
                     R"( is not a duration (e.g. "250ms", "5s", "2m", "1h" or "30"))");
    };
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0) return bad();
    std::string_view unit = text.substr(digits);
    int64_t scale_ms = 0;
    if (unit.empty() || unit == "s") {
        scale_ms = 1000;
    } else if (unit == "ms") {
        scale_ms = 1;
    } else if (unit == "m") {
        scale_ms = 60'000;
    } else if (unit == "h") {
        scale_ms = 3'600'000;
    } else {
        return bad();
    }
    int64_t n = 0;
    for (size_t i = 0; i < digits; ++i) {
        int64_t d = text[i] - '0';
        if (n > (detail::max_duration_ms - d) / 10) return detail::duration_too_large(quoted(text));
        n = n * 10 + d;
    }
    if (n > detail::max_duration_ms / scale_ms) return detail::duration_too_large(quoted(text));
    return milliseconds(n * scale_ms);
}

}  // namespace preforkd
