// The PROXY stage of a `proxy` listener's connections: before any session exists, the
// worker checks that the peer is a trusted balancer (server.proxy_trusted), reads the PROXY
// protocol v1/v2 header within the service's first-bytes timeout (HTTP: http.header_timeout),
// and passes the connection on with the header's source address as the peer: to the TLS
// handshake on a `tls proxy` listener, else to the session. Anything else closes the connection
// without an answer and counts it in the slot's proxy_rejected.
//
// The header is read with MSG_PEEK and then exactly its length is taken from the socket, so
// the session finds the stream starting with its own first byte: no prefix buffer and no
// wrapper transport, and the plain path is untouched. The PROXY header lies beneath any TLS
// (HAProxy sends it before the ClientHello), so reading the socket itself is what a `tls
// proxy` listener needs: the handshake starts on the byte after the header. The parser re-reads
// from the start, so a header split over several segments gives the same answer.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <preforkd/detail/cidr.hpp>
#include <preforkd/detail/syscall.hpp>

#include "core/proxy_protocol.hpp"
#include "worker/event_loop.hpp"

namespace preforkd::detail {
namespace {

socklen_t length_of(const sockaddr_storage& a) noexcept {
    switch (a.ss_family) {
        case AF_INET:
            return sizeof(sockaddr_in);
        case AF_INET6:
            return sizeof(sockaddr_in6);
        case AF_UNIX:
            return sizeof(sockaddr_un);
        default:
            return sizeof(sockaddr_storage);
    }
}

}  // namespace

void event_loop::start_proxy(connection& c) noexcept {
    if (!trusted(c.ac.peer, ws_.cfg->server.proxy_trusted)) {
        scoreboard_slot::bump(slot_.proxy_rejected, 1);
        close_connection(c);
        return;
    }
    c.in_proxy = true;
    // The balancer usually sends the header with the request: read it now, before the
    // socket joins the epoll set (as a session's first turn does).
    const int r = read_proxy_header(c, 0);
    if (r < 0) {
        reject_proxy(c, "malformed header");
        return;
    }
    if (r > 0) {
        after_proxy(c);
        return;
    }
    if (!watch_connection(c)) {
        c.in_proxy = false;
        close_connection(c);
        return;
    }
    timers_.set(c, ctx_.now_ms() + first_bytes_timeout_ms_);
}

void event_loop::on_proxy_event(connection& c, uint32_t events) noexcept {
    const int r = read_proxy_header(c, events);
    if (r < 0)
        reject_proxy(c, "malformed or missing header");
    else if (r > 0)
        after_proxy(c);
}

int event_loop::read_proxy_header(connection& c, uint32_t events) noexcept {
    uint8_t buf[proxy_header_max];
    const int fd = c.ac_fd();
    ssize_t n = retry_eintr([&] { return ::recv(fd, buf, sizeof buf, MSG_PEEK); });
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    if (n == 0) return -1;  // closed before a whole header
    const proxy_result p = parse_proxy_header(buf, static_cast<size_t>(n));
    if (p.status == proxy_status::invalid) {
        log_.debug("PROXY header refused: {}", p.reason);
        return -1;
    }
    if (p.status == proxy_status::need_more) {
        // The peer has hung up, or can send nothing the parser would still accept.
        if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) return -1;
        return 0;
    }
    // Take exactly the header: it is in the socket's queue (peeked), so this does not block.
    size_t left = p.consumed;
    while (left > 0) {
        ssize_t got = retry_eintr([&] { return ::recv(fd, buf, left, 0); });
        if (got <= 0) return -1;
        left -= static_cast<size_t>(got);
    }
    if (!p.local) {
        c.ac.peer = p.source;
        c.ac.peer_len = length_of(p.source);
    }
    return 1;
}

void event_loop::reject_proxy(connection& c, const char* why) noexcept {
    scoreboard_slot::bump(slot_.proxy_rejected, 1);
    log_.debug("PROXY stage: {}; closing without an answer", why);
    c.in_proxy = false;
    close_connection(c);
}

// The header is read: the next stage is the TLS handshake on a `tls proxy` listener (the
// ClientHello follows the header on the same socket), else the session.
void event_loop::after_proxy(connection& c) noexcept {
    c.in_proxy = false;
    timers_.remove(c);
    if (c.tls)
        start_tls(c);
    else
        open_session(c);
}

}  // namespace preforkd::detail
