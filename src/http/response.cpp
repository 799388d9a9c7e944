#include "http/response.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <limits>
#include <preforkd/detail/text.hpp>

namespace preforkd::http {

namespace {

constexpr std::array<const char*, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void put2(char* p, int v) noexcept {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
}

bool digits(std::string_view s, int& out) noexcept {
    if (s.empty()) return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

int month_index(std::string_view m) noexcept {
    for (size_t i = 0; i < month_names.size(); ++i)
        if (m == month_names[i]) return static_cast<int>(i);
    return -1;
}

bool make_time(int year, int mon, int day, int h, int m, int s, time_t& out) noexcept {
    if (mon < 0 || day < 1 || day > 31 || h > 23 || m > 59 || s > 60 || year < 1970) return false;
    tm t{};
    t.tm_year = year - 1900;
    t.tm_mon = mon;
    t.tm_mday = day;
    t.tm_hour = h;
    t.tm_min = m;
    t.tm_sec = s;
    out = ::timegm(&t);
    return out != static_cast<time_t>(-1);
}

bool parse_clock(std::string_view s, int& h, int& m, int& sec) noexcept {
    return s.size() == 8 && s[2] == ':' && s[5] == ':' && digits(s.substr(0, 2), h) &&
           digits(s.substr(3, 2), m) && digits(s.substr(6, 2), sec);
}

using preforkd::detail::trim_ows;

// A range position, 1*DIGIT. RFC 9110 section 14.1.1 sets no upper bound, and a position
// too large for 64 bits is still a valid one, only past the end of any file: it saturates
// at UINT64_MAX, so that a last-pos is clamped to the end, a first-pos is unsatisfiable
// and a suffix-length takes the whole file (section 14.1.2), rather than the Range being
// dropped as malformed.
bool parse_position(std::string_view s, uint64_t& out) noexcept {
    if (s.empty()) return false;
    constexpr uint64_t max = std::numeric_limits<uint64_t>::max();
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<uint64_t>(c - '0');
        v = v > (max - d) / 10 ? max : v * 10 + d;
    }
    out = v;
    return true;
}

// a < b for two 1*DIGIT strings of any length.
bool position_less(std::string_view a, std::string_view b) noexcept {
    while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
    while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
    return a.size() != b.size() ? a.size() < b.size() : a < b;
}

}  // namespace

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 200:
            return "OK";
        case 206:
            return "Partial Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 303:
            return "See Other";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 304:
            return "Not Modified";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 416:
            return "Range Not Satisfiable";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "";
    }
}

void format_http_date(time_t t, char (&out)[http_date_length + 1]) noexcept {
    tm g{};
    ::gmtime_r(&t, &g);
    std::memcpy(out, day_names[static_cast<size_t>(g.tm_wday)], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, g.tm_mday);
    out[7] = ' ';
    std::memcpy(out + 8, month_names[static_cast<size_t>(g.tm_mon)], 3);
    out[11] = ' ';
    int year = g.tm_year + 1900;
    put2(out + 12, (year / 100) % 100);
    put2(out + 14, year % 100);
    out[16] = ' ';
    put2(out + 17, g.tm_hour);
    out[19] = ':';
    put2(out + 20, g.tm_min);
    out[22] = ':';
    put2(out + 23, g.tm_sec);
    std::memcpy(out + 25, " GMT", 4);
    out[29] = '\0';
}

bool parse_http_date(std::string_view s, time_t& out) noexcept {
    int day = 0, year = 0, h = 0, m = 0, sec = 0;
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' &&
        s[16] == ' ' && s.substr(25) == " GMT") {
        return digits(s.substr(5, 2), day) && digits(s.substr(12, 4), year) &&
               parse_clock(s.substr(17, 8), h, m, sec) &&
               make_time(year, month_index(s.substr(8, 3)), day, h, m, sec, out);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years per RFC 9110 section 5.6.7
    // (read here as 1970-2069, which is what the 50-year rule gives until 2020 + 49).
    if (size_t comma = s.find(", "); comma != std::string_view::npos && comma >= 6 &&
                                     s.size() == comma + 24 && s.substr(s.size() - 4) == " GMT") {
        std::string_view d = s.substr(comma + 2);
        if (d[2] != '-' || d[6] != '-' || d[9] != ' ') return false;
        if (!digits(d.substr(0, 2), day) || !digits(d.substr(7, 2), year)) return false;
        year += year < 70 ? 2000 : 1900;
        return parse_clock(d.substr(10, 8), h, m, sec) &&
               make_time(year, month_index(d.substr(3, 3)), day, h, m, sec, out);
    }
    // asctime: "Sun Nov  6 08:49:37 1994"
    if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
        std::string_view d = s.substr(8, 2);
        if (d[0] == ' ') d.remove_prefix(1);
        return digits(d, day) && digits(s.substr(20, 4), year) &&
               parse_clock(s.substr(11, 8), h, m, sec) &&
               make_time(year, month_index(s.substr(4, 3)), day, h, m, sec, out);
    }
    return false;
}

date_cache::date_cache(std::string_view server) {
    auto r = fmt::format_to_n(lines_.data(), lines_.size() - 40, "Server: {}\r\nDate: ", server);
    date_at_ = static_cast<size_t>(r.out - lines_.data());
    std::memcpy(lines_.data() + date_at_ + http_date_length, "\r\n", 2);
    lines_len_ = date_at_ + http_date_length + 2;
}

void date_cache::refresh(time_t now) noexcept {
    now_ = now;
    char date[http_date_length + 1];
    format_http_date(now, date);
    std::memcpy(lines_.data() + date_at_, date, http_date_length);
    tm g{};
    ::gmtime_r(&now, &g);
    // Common Log Format time, in UTC: one cached string for every worker and no tz lookup.
    auto r = fmt::format_to_n(log_.data(), log_.size(), "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
                              g.tm_mday, month_names[static_cast<size_t>(g.tm_mon)],
                              g.tm_year + 1900, g.tm_hour, g.tm_min, g.tm_sec);
    log_len_ = static_cast<size_t>(r.out - log_.data());
}

std::string make_etag(int64_t mtime_s, int64_t mtime_ns, uint64_t size) {
    return fmt::format("\"{:x}.{:x}-{:x}\"", mtime_s, mtime_ns, size);
}

bool if_none_match_matches(std::string_view header, std::string_view etag) noexcept {
    header = trim_ows(header);
    if (header == "*") return true;
    std::string_view mine = etag;
    if (mine.substr(0, 2) == "W/") mine.remove_prefix(2);
    while (!header.empty()) {
        size_t comma = header.find(',');
        std::string_view tag = trim_ows(header.substr(0, comma));
        if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);  // weak comparison
        if (!tag.empty() && tag == mine) return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

bool if_range_matches(std::string_view header, std::string_view etag, time_t mtime) noexcept {
    header = trim_ows(header);
    if (!header.empty() && header.front() == '"') return header == etag;  // strong only
    if (header.substr(0, 2) == "W/") return false;
    time_t t = 0;
    return parse_http_date(header, t) && t == mtime;
}

byte_range evaluate_range(std::string_view header, uint64_t size) noexcept {
    byte_range full;
    header = trim_ows(header);
    constexpr std::string_view unit = "bytes=";
    if (header.size() < unit.size()) return full;
    for (size_t i = 0; i < unit.size(); ++i) {
        char c = header[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        if (c != unit[i]) return full;  // range units are case-insensitive
    }
    std::string_view spec = trim_ows(header.substr(unit.size()));
    if (spec.find(',') != std::string_view::npos) return full;  // several ranges: ignored
    size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return full;
    std::string_view a = spec.substr(0, dash);
    std::string_view b = spec.substr(dash + 1);
    byte_range r;
    r.kind = range_kind::partial;
    if (a.empty()) {  // suffix: the last b bytes
        uint64_t n = 0;
        if (!parse_position(b, n)) return full;
        if (n == 0 || size == 0) return {range_kind::unsatisfiable, 0, 0};
        r.length = n < size ? n : size;
        r.first = size - r.length;
        return r;
    }
    uint64_t first = 0;
    if (!parse_position(a, first)) return full;
    uint64_t last = 0;
    if (b.empty()) {
        last = size == 0 ? 0 : size - 1;
    } else {
        if (!parse_position(b, last)) return full;
        // Two saturated positions are compared as the numbers they spell.
        if (last < first || (last == first && position_less(b, a)))
            return full;  // invalid range-spec: ignored
        if (last >= size) last = size == 0 ? 0 : size - 1;
    }
    if (first >= size) return {range_kind::unsatisfiable, 0, 0};
    r.first = first;
    r.length = last - first + 1;
    return r;
}

void head_writer::status(int code, const date_cache& dates) {
    out_.append("HTTP/1.1 ");
    char num[4] = {static_cast<char>('0' + code / 100), static_cast<char>('0' + code / 10 % 10),
                   static_cast<char>('0' + code % 10), ' '};
    out_.append(num, 4);
    out_.append(reason_phrase(code));
    out_.append("\r\n");
    out_.append(dates.server_and_date());
}

void head_writer::header(std::string_view name, std::string_view value) {
    out_.append(name);
    out_.append(": ");
    out_.append(value);
    out_.append("\r\n");
}

void head_writer::header(std::string_view name, uint64_t value) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, value);
    header(name, std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

void head_writer::end(bool keep_alive, int minor) {
    // HTTP/1.1 persists by default; HTTP/1.0 only when both sides say keep-alive.
    if (!keep_alive)
        out_.append("Connection: close\r\n");
    else if (minor == 0)
        out_.append("Connection: keep-alive\r\n");
    out_.append("\r\n");
}

namespace {
constexpr std::string_view body_a = "<!DOCTYPE html>\n<html><head><title>";
constexpr std::string_view body_b = "</title></head>\n<body><h1>";
constexpr std::string_view body_c = "</h1></body></html>\n";
}  // namespace

size_t error_body_length(int status) noexcept {
    size_t title = 4 + reason_phrase(status).size();  // "404 Not Found"
    return body_a.size() + title + body_b.size() + title + body_c.size();
}

size_t append_error_body(std::string& out, int status) {
    char num[4] = {static_cast<char>('0' + status / 100), static_cast<char>('0' + status / 10 % 10),
                   static_cast<char>('0' + status % 10), ' '};
    std::string_view reason = reason_phrase(status);
    out.append(body_a);
    out.append(num, 4);
    out.append(reason);
    out.append(body_b);
    out.append(num, 4);
    out.append(reason);
    out.append(body_c);
    return error_body_length(status);
}

}  // namespace preforkd::http
