#include "http/access_log.hpp"

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

}  // namespace

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

void write_access_line(int fd, const access_record& r, std::string& line) noexcept {
    line.clear();
    try {
        format_access_line(r, line);
    } catch (...) {
        return;
    }
    // One write(2) per line on an O_APPEND file: lines of many workers never interleave
    // (a failed or short write is not retried: a torn line is worse than a lost one).
    (void)preforkd::detail::retry_eintr([&] { return ::write(fd, line.data(), line.size()); });
}

}  // namespace preforkd::http
