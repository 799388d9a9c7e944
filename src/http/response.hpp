// Response pieces: status lines, HTTP dates, validators, ranges, and the head writer.
#pragma once

#include <time.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace preforkd::http {

// "Not Found" for 404; "" for a status this server never sends.
std::string_view reason_phrase(int status) noexcept;

// IMF-fixdate (RFC 9110 section 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT", 29 characters.
inline constexpr size_t http_date_length = 29;
void format_http_date(time_t t, char (&out)[http_date_length + 1]) noexcept;
// Accepts IMF-fixdate, RFC 850 and asctime dates, as RFC 9110 says a recipient must.
bool parse_http_date(std::string_view text, time_t& out) noexcept;

// The Date and Server header lines and the access log's time, formatted at most once a
// second: "Server: preforkd/x.y.z\r\nDate: ...\r\n" and "25/Nov/2026:12:00:00 +0000".
class date_cache {
  public:
    explicit date_cache(std::string_view server);
    // Cheap when the second has not changed: one comparison, inline (every request).
    void update(time_t now) noexcept {
        if (now != now_) refresh(now);
    }
    std::string_view server_and_date() const noexcept { return {lines_.data(), lines_len_}; }
    // The IMF-fixdate alone (http_date_length characters).
    std::string_view date() const noexcept { return {lines_.data() + date_at_, http_date_length}; }
    std::string_view log_time() const noexcept { return {log_.data(), log_len_}; }
    time_t now() const noexcept { return now_; }

  private:
    void refresh(time_t now) noexcept;  // a new second: the date strings again

    time_t now_ = -1;
    std::array<char, 128> lines_{};
    size_t lines_len_ = 0;
    size_t date_at_ = 0;  // where the date starts in lines_
    std::array<char, 32> log_{};
    size_t log_len_ = 0;
};

// A strong validator from what stat says: `"<mtime s>.<mtime ns>-<size>"` in hex. Equal in
// every worker, changes with any write that moves mtime or size.
std::string make_etag(int64_t mtime_s, int64_t mtime_ns, uint64_t size);

// If-None-Match (RFC 9110 section 13.1.2): "*" or a list of entity tags, compared weakly.
bool if_none_match_matches(std::string_view header, std::string_view etag) noexcept;
// If-Range with an entity tag (strong comparison) or a date (exact Last-Modified).
bool if_range_matches(std::string_view header, std::string_view etag, time_t mtime) noexcept;

enum class range_kind : uint8_t { full, partial, unsatisfiable };
struct byte_range {
    range_kind kind = range_kind::full;
    uint64_t first = 0;
    uint64_t length = 0;
};
// One "bytes=" range against a representation of `size` bytes. Anything but exactly one
// syntactically valid byte range (several ranges, other units, bad syntax) gives `full`:
// RFC 9110 section 14.2 lets a server ignore Range, and serving the whole file is always
// correct. A valid range that misses the file gives `unsatisfiable` (416).
byte_range evaluate_range(std::string_view header, uint64_t size) noexcept;

// Appends a response head to a reused string.
class head_writer {
  public:
    explicit head_writer(std::string& out) noexcept : out_(out) {}
    // "HTTP/1.1 <status> <reason>\r\n" then the cached Server and Date lines.
    void status(int code, const date_cache& dates);
    void header(std::string_view name, std::string_view value);
    void header(std::string_view name, uint64_t value);
    void raw(std::string_view lines) { out_.append(lines); }
    // Connection header as needed for `keep_alive` in HTTP/1.`minor`, and the empty line.
    void end(bool keep_alive, int minor);

  private:
    std::string& out_;
};

// Appends a small HTML page for an error status; returns its length.
size_t append_error_body(std::string& out, int status);
size_t error_body_length(int status) noexcept;

}  // namespace preforkd::http
