#include "tls/tls_accept.hpp"

#include <sys/socket.h>

#include <preforkd/detail/syscall.hpp>

#include "tls/first_bytes.hpp"

namespace preforkd::tls {

namespace {

// The request's bytes are taken first so that the close after the 400 does not turn into a
// reset because of unread data (what arrives later is the lingering close's job).
void answer_plain_http(int fd) noexcept {
    char discard[4096];
    while (detail::retry_eintr([&] { return ::recv(fd, discard, sizeof discard, 0); }) > 0) {
    }
    std::string_view r = plain_http_on_tls_response();
    // Best effort: an empty socket buffer takes these few hundred bytes at once.
    (void)detail::retry_eintr([&] { return ::send(fd, r.data(), r.size(), MSG_NOSIGNAL); });
    ::shutdown(fd, SHUT_WR);
}

}  // namespace

accept_status tls_accept::step(clock::time_point now) noexcept {
    if (now >= deadline_) {
        transport_.count_failure();
        return accept_status::rejected;
    }
    if (!classified_) {
        switch (peek_first_bytes(transport_.fd())) {
            case first_bytes_kind::need_more:
                wants_ = readiness::read;
                return accept_status::in_progress;
            case first_bytes_kind::plain_http:
                answer_plain_http(transport_.fd());
                return accept_status::answered_plain_http;
            case first_bytes_kind::garbage:
                transport_.count_failure();
                return accept_status::rejected;
            case first_bytes_kind::tls_handshake:
                classified_ = true;
                break;
        }
    }
    switch (transport_.handshake()) {
        case handshake_status::done:
            wants_ = readiness::none;
            return accept_status::established;
        case handshake_status::want_read:
            wants_ = readiness::read;
            return accept_status::in_progress;
        case handshake_status::want_write:
            wants_ = readiness::write;
            return accept_status::in_progress;
        case handshake_status::failed:
            break;
    }
    return accept_status::rejected;
}

}  // namespace preforkd::tls
