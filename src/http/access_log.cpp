#include "http/access_log.hpp"

#include <time.h>
#include <unistd.h>

#include <charconv>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/detail/text.hpp>

namespace preforkd::http {

namespace {

void append_field(std::string& out, std::string_view s) {
    if (s.empty())
        out.push_back('-');
    else
        preforkd::detail::append_hex_escaped(out, s, "\"");
}

void append_number(std::string& out, uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<size_t>(r.ptr - buf));
}

void append_padded(std::string& out, unsigned v, int width) {
    char buf[8];
    for (int i = width - 1; i >= 0; --i, v /= 10) buf[i] = static_cast<char>('0' + v % 10);
    out.append(buf, static_cast<size_t>(width));
}

// The name part of a Host value: "[::1]:8080" -> "[::1]", "Example.org:80" -> "Example.org".
std::string_view host_name(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        size_t close = host.find(']');
        return close == std::string_view::npos ? host : host.substr(0, close + 1);
    }
    return host.substr(0, host.find(':'));
}

// "host:port " (Apache's %v:%p): the client's Host, lower-cased like a name, escaped.
void append_vhost(std::string& out, const access_record& r) {
    std::string_view name = host_name(r.host);
    if (name.empty()) {
        out.append(r.listener.empty() ? std::string_view("-") : r.listener);
        return;
    }
    const size_t at = out.size();
    preforkd::detail::append_hex_escaped(out, name, "\" ");
    for (size_t i = at; i < out.size(); ++i)
        if (out[i] >= 'A' && out[i] <= 'Z') out[i] = static_cast<char>(out[i] - 'A' + 'a');
    if (r.port != 0) {
        out.push_back(':');
        append_number(out, r.port);
    }
}

// Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, at
// most U+10FFFF), or 0 if it is not one.
size_t utf8_length(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xc0) == 0x80; };
    const unsigned c = b(0);
    if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
        if (c == 0xed && b(1) >= 0xa0) return 0;  // UTF-16 surrogates
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
        if (c == 0xf4 && b(1) >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

// "2026-12-07T02:10:00.123Z"
void append_iso_time(std::string& out, int64_t unix_ms) {
    const time_t secs = static_cast<time_t>(unix_ms / 1000);
    tm t{};
    gmtime_r(&secs, &t);
    append_padded(out, static_cast<unsigned>(t.tm_year + 1900), 4);
    out.push_back('-');
    append_padded(out, static_cast<unsigned>(t.tm_mon + 1), 2);
    out.push_back('-');
    append_padded(out, static_cast<unsigned>(t.tm_mday), 2);
    out.push_back('T');
    append_padded(out, static_cast<unsigned>(t.tm_hour), 2);
    out.push_back(':');
    append_padded(out, static_cast<unsigned>(t.tm_min), 2);
    out.push_back(':');
    append_padded(out, static_cast<unsigned>(t.tm_sec), 2);
    out.push_back('.');
    append_padded(out, static_cast<unsigned>(unix_ms % 1000), 3);
    out.append("Z");
}

// METHOD SP target SP version, as far as it was read: method, path and query apart.
struct request_parts {
    std::string_view method, path, query;
};
request_parts split_request_line(std::string_view line) {
    request_parts p;
    size_t sp = line.find(' ');
    p.method = line.substr(0, sp);
    if (sp == std::string_view::npos) return p;
    std::string_view rest = line.substr(sp + 1);
    size_t last = rest.rfind(' ');
    std::string_view target = last == std::string_view::npos ? rest : rest.substr(0, last);
    size_t q = target.find('?');
    p.path = target.substr(0, q);
    if (q != std::string_view::npos) p.query = target.substr(q + 1);
    return p;
}

void append_json_line(std::string& out, const access_record& r) {
    const request_parts req = split_request_line(r.request_line.substr(0, max_logged_request_line));
    out.append("{\"time\":\"");
    append_iso_time(out, r.unix_ms);
    out.append("\",\"client\":");
    append_json_string(out, r.client);
    out.append(",\"host\":");
    append_json_string(out, r.host);
    out.append(",\"method\":");
    append_json_string(out, req.method);
    out.append(",\"path\":");
    append_json_string(out, req.path);
    out.append(",\"query\":");
    append_json_string(out, req.query);
    out.append(",\"status\":");
    append_number(out, static_cast<uint64_t>(r.status));
    out.append(",\"bytes\":");
    append_number(out, r.body_bytes);
    out.append(",\"referer\":");
    append_json_string(out, r.referer);
    out.append(",\"user_agent\":");
    append_json_string(out, r.user_agent);
    out.append(",\"duration_us\":");
    append_number(out, static_cast<uint64_t>(r.duration_us < 0 ? 0 : r.duration_us));
    out.append(",\"tls\":");
    if (r.tls)
        append_json_string(out, r.tls);
    else
        out.append("null");
    out.append("}\n");
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            size_t n = utf8_length(s, i);
            if (n == 0) {
                out.append("\\ufffd");  // one replacement per byte that is not UTF-8
                ++i;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                    out.append(esc, 6);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    out.push_back('"');
}

void format_access_line(const access_record& r, std::string& out) {
    out.append(r.client.empty() ? std::string_view("-") : r.client);
    out.append(" - - [");
    out.append(r.time);
    out.append("] \"");
    append_field(out, r.request_line.substr(0, max_logged_request_line));
    out.append("\" ");
    append_number(out, static_cast<uint64_t>(r.status));
    out.push_back(' ');
    if (r.body_bytes == 0)
        out.push_back('-');
    else
        append_number(out, r.body_bytes);
    out.append(" \"");
    append_field(out, r.referer);
    out.append("\" \"");
    append_field(out, r.user_agent);
    out.append("\"\n");
}

void format_access_line(access_log_format f, const access_record& r, std::string& out) {
    switch (f) {
        case access_log_format::combined:
            format_access_line(r, out);
            return;
        case access_log_format::vhost_combined:
            append_vhost(out, r);
            out.push_back(' ');
            format_access_line(r, out);
            return;
        case access_log_format::json:
            append_json_line(out, r);
            return;
    }
}

void write_access_line(int fd, access_log_format f, const access_record& r,
                       std::string& line) noexcept {
    line.clear();
    try {
        format_access_line(f, r, line);
    } catch (...) {
        return;
    }
    // One write(2) per line on an O_APPEND file: lines of many workers never interleave
    // (a failed or short write is not retried: a torn line is worse than a lost one).
    (void)preforkd::detail::retry_eintr([&] { return ::write(fd, line.data(), line.size()); });
}

void write_access_line(int fd, const access_record& r, std::string& line) noexcept {
    write_access_line(fd, access_log_format::combined, r, line);
}

}  // namespace preforkd::http
