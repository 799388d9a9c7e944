// The event loop's TLS part: a connection accepted on a tls listener runs its handshake here,
// non-blocking and bounded by handshake_timeout, and only then meets the service, which gets
// the tls_transport as its connection's io: protocols (HTTP, echo, blocking handlers) do not
// know TLS is there. Plain listeners never come here.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <preforkd/detail/syscall.hpp>

#include "tls/ktls.hpp"
#include "tls/tls_settings.hpp"
#include "worker/event_loop.hpp"

namespace preforkd::detail {
namespace {

// After the plain-HTTP 400: how long, and how much, input is dropped before the close (as an
// HTTP session lingers after an error answer).
constexpr int64_t plain_linger_ms = 2'000;
constexpr size_t plain_linger_bytes = 1 << 20;

}  // namespace

void event_loop::log_tls_start() noexcept {
    const bool any =
        std::any_of(listeners_.begin(), listeners_.end(), [](const auto& l) { return l->tls; });
    if (!any) return;
    const tls::tls_settings* s = ws_.cfg->tls.get();
    if (s) handshake_timeout_ms_ = std::max<int64_t>(1, s->handshake_timeout.count());
    // Read now, before any chroot could hide /proc; each handshake then asks OpenSSL whether
    // it really switched the socket to kernel sends.
    const bool ulp = tls::kernel_offers_tls_ulp_cached();
    const bool ktls = s && s->ktls && ulp;
    slot_.tls_send_path.store(ktls ? 2 : 1, std::memory_order_relaxed);
    log_.info("tls: send path {} (ktls setting {}, kernel tls ULP {})", ktls ? "ktls" : "userspace",
              s && s->ktls ? "on" : "off", ulp ? "yes" : "no");
}

void event_loop::publish_tls() noexcept {
    if (tls_counters_.handshakes == tls_published_.handshakes &&
        tls_counters_.failures == tls_published_.failures)
        return;
    slot_.tls_handshakes.store(tls_counters_.handshakes, std::memory_order_relaxed);
    slot_.tls_resumed.store(tls_counters_.resumed, std::memory_order_relaxed);
    slot_.tls_failures.store(tls_counters_.failures, std::memory_order_relaxed);
    tls_published_ = tls_counters_;
}

void event_loop::start_tls(connection& c) noexcept {
    c.hs.emplace(*c.tls, std::chrono::steady_clock::now() +
                             std::chrono::milliseconds(handshake_timeout_ms_));
    if (!watch_connection(c)) {
        close_connection(c);
        return;
    }
    timers_.set(c, ctx_.now_ms() + handshake_timeout_ms_);
    // The ClientHello has usually arrived with the accept: the first step answers it now.
    step_handshake(c, false);
}

void event_loop::step_handshake(connection& c, bool expired) noexcept {
    // Expired: the heap's deadline passed; step() at the handshake's own deadline rejects it
    // (the two clocks are read at slightly different moments).
    const auto now = expired ? c.hs->deadline() : std::chrono::steady_clock::now();
    switch (c.hs->step(now)) {
        case tls::accept_status::in_progress:
            return;  // both readinesses are watched (edge-triggered): any wakes the next step
        case tls::accept_status::answered_plain_http:
            // The 400 is out and our side shut; a body may still be coming. Closing with
            // unread input would send a reset that can destroy the 400 before the client
            // reads it, so the input is read and dropped for a while first.
            c.hs.reset();
            c.lingering = true;
            timers_.set(c, ctx_.now_ms() + plain_linger_ms);
            linger_plain(c);
            return;
        case tls::accept_status::rejected:
            if (!c.tls->failure_reason().empty())
                log_.debug("tls handshake failed: {}", c.tls->failure_reason());
            publish_tls();
            close_connection(c);
            return;
        case tls::accept_status::established:
            break;
    }
    c.hs.reset();
    timers_.remove(c);
    publish_tls();
    c.ac.tls_version = SSL_get_version(c.tls->ssl());
    open_session(c);
}

void event_loop::linger_plain(connection& c) noexcept {
    char discard[4096];
    const int fd = c.tls->fd();
    for (;;) {
        const ssize_t n = retry_eintr([&] { return ::recv(fd, discard, sizeof discard, 0); });
        if (n > 0) {
            c.lingered += static_cast<size_t>(n);
            if (c.lingered <= plain_linger_bytes) continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;  // the timer, or the client's close, ends it
        }
        close_connection(c);  // the client closed, an error, or too much input
        return;
    }
}

}  // namespace preforkd::detail
