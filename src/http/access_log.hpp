// The access log in Combined Log Format, one write(2) per line on an O_APPEND file, so the
// lines of many workers never tear or interleave.
#pragma once

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

// The longest request line logged: a longer one (a 414, an attack) is cut here.
inline constexpr size_t max_logged_request_line = 2048;

// Appends one line (with its '\n') to `out`. Inside the quoted fields, quotes, backslashes,
// controls and bytes >= 0x7f are written \xhh (as nginx does), so a client cannot forge a
// line; the request line is cut at max_logged_request_line bytes.
void format_access_line(const access_record& r, std::string& out);

// Formats `r` into `line` (cleared first) and writes it to `fd` with one write(2).
void write_access_line(int fd, const access_record& r, std::string& line) noexcept;

}  // namespace preforkd::http
