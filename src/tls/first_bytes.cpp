#include "tls/first_bytes.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <preforkd/detail/syscall.hpp>

namespace preforkd::tls {

namespace {

bool is_tchar(uint8_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

}  // namespace

first_bytes_kind classify_first_bytes(const uint8_t* data, size_t len) noexcept {
    if (len == 0) return first_bytes_kind::need_more;
    if (data[0] == 0x16) {
        if (len < 2) return first_bytes_kind::need_more;
        if (data[1] != 0x03) return first_bytes_kind::garbage;
        if (len < 3) return first_bytes_kind::need_more;
        return data[2] <= 0x04 ? first_bytes_kind::tls_handshake : first_bytes_kind::garbage;
    }
    for (size_t i = 0; i < len; ++i) {
        if (i > 0 && data[i] == ' ') return first_bytes_kind::plain_http;
        if (i >= max_method_length || !is_tchar(data[i])) return first_bytes_kind::garbage;
    }
    return first_bytes_kind::need_more;
}

first_bytes_kind peek_first_bytes(int fd) noexcept {
    uint8_t buf[max_method_length + 1];
    ssize_t n = detail::retry_eintr([&] { return ::recv(fd, buf, sizeof buf, MSG_PEEK); });
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? first_bytes_kind::need_more
                                                       : first_bytes_kind::garbage;
    if (n == 0) return first_bytes_kind::garbage;
    return classify_first_bytes(buf, static_cast<size_t>(n));
}

std::string_view plain_http_on_tls_response() noexcept {
    return "HTTP/1.1 400 Bad Request\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: 50\r\n"
           "Connection: close\r\n"
           "\r\n"
           "This port speaks HTTPS: use https:// to reach it.\n";
}

}  // namespace preforkd::tls
