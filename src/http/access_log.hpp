// The access log, one write(2) per line on an O_APPEND file, so the lines of many workers
// never tear or interleave. Three formats (log.access_format): Combined Log Format, Apache's
// vhost_combined (the virtual host first), and JSON lines for Loki or ELK.
#pragma once

#include <cstdint>
#include <preforkd/config.hpp>
#include <string>
#include <string_view>

namespace preforkd::http {

struct access_record {
    std::string_view client;        // peer address text
    std::string_view time;          // "25/Nov/2026:12:00:00 +0000" (combined, vhost_combined)
    std::string_view request_line;  // "" when none was read: logged as "-"
    int status = 0;
    uint64_t body_bytes = 0;  // logged as "-" when 0 in the Apache formats, like %b
    std::string_view referer;
    std::string_view user_agent;
    // vhost_combined and json only:
    std::string_view host;      // the Host header as sent; "" when there was none
    std::string_view listener;  // the listener's address ("127.0.0.1:8080"): the vhost
                                // when there is no Host
    uint16_t port = 0;          // the listener's port (0: a unix socket)
    // json only:
    int64_t unix_ms = 0;        // wall clock, ms since the epoch
    int64_t duration_us = 0;    // from the request's first byte to its answer queued
    const char* tls = nullptr;  // "TLSv1.3"; nullptr on a plain connection
};

// The longest request line logged: a longer one (a 414, an attack) is cut here.
inline constexpr size_t max_logged_request_line = 2048;

// Appends one line (with its '\n') to `out`, in Combined Log Format. Inside the quoted
// fields, quotes, backslashes, controls and bytes >= 0x7f are written \xhh (as nginx does),
// so a client cannot forge a line; the request line is cut at max_logged_request_line bytes.
void format_access_line(const access_record& r, std::string& out);

// The same in the given format. vhost_combined puts "host:port " first (Apache's
// %v:%p): the Host header's name without its port, lower-cased, and the listener's port;
// the listener's address when there is no Host. json writes one object: time (ISO 8601
// UTC with ms), client, host, method, path, query, status, bytes, referer, user_agent,
// duration_us, tls.
void format_access_line(access_log_format f, const access_record& r, std::string& out);

// Appends `s` as a JSON string (quotes included): '"', '\' and controls escaped, valid UTF-8
// kept, and every byte of an invalid UTF-8 sequence written \ufffd, so the line is valid
// JSON whatever the client sent.
void append_json_string(std::string& out, std::string_view s);

// Formats `r` into `line` (cleared first) and writes it to `fd` with one write(2). The
// destination is per call: a site with its own access log passes its own fd.
void write_access_line(int fd, const access_record& r, std::string& line) noexcept;
void write_access_line(int fd, access_log_format f, const access_record& r,
                       std::string& line) noexcept;

// The format a session writes: DESIGN's "the Combined format gains the host when sites are
// configured", so with [[site]] tables `combined` is written as vhost_combined (a line that
// does not say which site it was for cannot be read back once sites share a file).
constexpr access_log_format effective_access_format(access_log_format configured,
                                                    bool sites_configured) noexcept {
    return configured == access_log_format::combined && sites_configured
               ? access_log_format::vhost_combined
               : configured;
}

}  // namespace preforkd::http
