// The PROXY stage of a `proxy` listener's connections: before any session exists, the
// worker checks that the peer is a trusted balancer (server.proxy_trusted), reads the PROXY
// protocol v1/v2 header within proxy_header_timeout_ms, and opens the session with the
// header's source address as the peer. Anything else closes the connection without an
// answer and counts it in the slot's proxy_rejected.
//
// The header is read with MSG_PEEK and then exactly its length is taken from the socket, so
// the session finds the stream starting with its own first byte: no prefix buffer and no
// wrapper transport, and the plain path is untouched. The PROXY header lies beneath any TLS
// (HAProxy sends it before the ClientHello), so reading the socket itself is what a `tls
// proxy` listener needs as well. The parser re-reads from the start, so a header split over
// several segments gives the same answer.
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

// How long a trusted balancer may take to send its header: the same bound http.header_timeout
// has by default. A balancer sends the header with its first segment; only a stuck or hostile
// peer gets near it.
constexpr int64_t proxy_header_timeout_ms = 10'000;

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

void event_loop::start_proxy(connection& c, accepted_connection ac) noexcept {
    if (!trusted(ac.peer, ws_.cfg->server.proxy_trusted)) {
        scoreboard_slot::bump(slot_.proxy_rejected, 1);
        c.io.reset();
        free_.push_back(&c);  // never seen by epoll: reusable at once
        return;
    }
    c.in_proxy = true;
    c.pending = std::move(ac);
    c.busy = false;
    c.timer_at = 0;
    c.pos = static_cast<uint32_t>(live_.size());
    live_.push_back(&c);
    publish_counts();
    // The balancer usually sends the header with the request: read it now, before the
    // socket joins the epoll set (as accept_one's first turn does for sessions).
    const int r = read_proxy_header(c, 0);
    if (r < 0) {
        reject_proxy(c, false, "malformed header");
        return;
    }
    if (r > 0) {
        open_after_proxy(c, false);
        return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c;
    if (sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.io.fd(), &ev) != 0) {
        log_.error("epoll_ctl(ADD connection): {}", std::strerror(errno));
        c.in_proxy = false;
        close_connection(c, true);
        return;
    }
    timers_.set(c, ctx_.now_ms() + proxy_header_timeout_ms);
    if (full()) arm_listeners(false);
}

void event_loop::on_proxy_event(connection& c, uint32_t events) noexcept {
    const int r = read_proxy_header(c, events);
    if (r == 0) return;
    timers_.remove(c);
    if (r < 0)
        reject_proxy(c, true, "malformed or missing header");
    else
        open_after_proxy(c, true);
}

int event_loop::read_proxy_header(connection& c, uint32_t events) noexcept {
    uint8_t buf[proxy_header_max];
    const int fd = c.io.fd();
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
        c.pending.peer = p.source;
        c.pending.peer_len = length_of(p.source);
    }
    return 1;
}

void event_loop::reject_proxy(connection& c, bool watched, const char* why) noexcept {
    scoreboard_slot::bump(slot_.proxy_rejected, 1);
    log_.debug("PROXY stage: {}; closing without an answer", why);
    c.in_proxy = false;
    close_connection(c, !watched);
}

void event_loop::open_after_proxy(connection& c, bool watched) noexcept {
    c.in_proxy = false;
    c.s = svc_.open(std::move(c.pending));
    if (!c.s) {
        close_connection(c, !watched);
        return;
    }
    if (c.s->busy()) {
        c.busy = true;
        ++busy_;
        publish_counts();
    }
    bool keep = !retiring_ || c.s->on_retire();
    if (keep) keep = c.s->on_io(EPOLLIN | EPOLLOUT);
    if (keep && !watched) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = &c;
        if (sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.io.fd(), &ev) != 0) {
            log_.error("epoll_ctl(ADD connection): {}", std::strerror(errno));
            keep = false;
        }
    }
    if (!keep) {
        close_connection(c, !watched);
        return;
    }
    settle(c, true);
    if (!watched && full()) arm_listeners(false);
}

}  // namespace preforkd::detail
