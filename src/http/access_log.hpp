// The access log in Combined Log Format, one write(2) per line on an O_APPEND file, so the
// lines of many workers never tear or interleave.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace preforkd::http {

struct access_record {
    std::string_view client;        // peer address text
    std::string_view time;          // "25/Nov/2026:12:00:00 +0000"
    std::string_view request_line;  // "" when none was read: logged as "-"
    int status = 0;
    uint64_t body_bytes = 0;  // logged as "-" when 0, like Apache's %b
    std::string_view referer;
    std::string_view user_agent;
};

// Appends one line (with its '\n') to `out`. Quotes, backslashes, controls and bytes >=
// 0x7f inside the quoted fields are escaped (\" \\ \xHH) so a client cannot forge a line.
void format_access_line(const access_record& r, std::string& out);

// Formats the peer for the log: "192.0.2.1", "2001:db8::1" (v4-mapped shown as v4), or
// "unix" for a Unix-socket peer. Returns the length written to `out` (at most 46 bytes).
size_t format_peer(const sockaddr_storage& peer, char (&out)[64]) noexcept;

}  // namespace preforkd::http
