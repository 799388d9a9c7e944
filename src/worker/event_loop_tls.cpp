// The event loop's TLS part: a connection accepted on a tls listener runs its handshake here,
// non-blocking and bounded by handshake_timeout, and only then meets the service, which gets
// the tls_transport as its connection's io: protocols (HTTP, echo, blocking handlers) do not
// know TLS is there. Plain listeners never come here.
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>

#include "tls/ktls.hpp"
#include "tls/tls_settings.hpp"
#include "worker/event_loop.hpp"

namespace preforkd::detail {
namespace {

constexpr uint32_t tls_connection_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

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

void event_loop::start_tls(connection& c, int fd, const accepted_connection& ac) noexcept {
    c.tls.reset(new (std::nothrow) tls::tls_transport(
        unique_fd(fd), static_cast<SSL_CTX*>(ws_.tls_ctx), &tls_counters_));
    if (!c.tls || !c.tls->valid()) {
        if (!c.tls) ::close(fd);
        c.tls.reset();
        free_.push_back(&c);  // never seen by epoll: reusable at once
        return;
    }
    c.ac = ac;
    c.ac.io = c.tls.get();
    c.hs.emplace(*c.tls, std::chrono::steady_clock::now() +
                             std::chrono::milliseconds(handshake_timeout_ms_));
    c.busy = false;
    c.timer_at = 0;
    // Counted against max_connections from the accept: a handshake holds a descriptor and
    // memory as a session does.
    c.pos = static_cast<uint32_t>(live_.size());
    live_.push_back(&c);
    publish_counts();
    epoll_event ev{};
    ev.events = tls_connection_events;
    ev.data.ptr = &c;
    if (sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_.error("epoll_ctl(ADD connection): {}", std::strerror(errno));
        close_connection(c, true);
        return;
    }
    timers_.set(c, ctx_.now_ms() + handshake_timeout_ms_);
    // The ClientHello has usually arrived with the accept: the first step answers it now.
    step_handshake(c, false);
    if (full()) arm_listeners(false);
}

void event_loop::step_handshake(connection& c, bool expired) noexcept {
    // Expired: the heap's deadline passed; step() at the handshake's own deadline rejects it
    // (the two clocks are read at slightly different moments).
    const auto now = expired ? c.hs->deadline() : std::chrono::steady_clock::now();
    switch (c.hs->step(now)) {
        case tls::accept_status::in_progress:
            return;  // both readinesses are watched (edge-triggered): any wakes the next step
        case tls::accept_status::answered_plain_http:
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
    c.s = svc_.open(std::move(c.ac));
    if (!c.s) {
        close_connection(c);
        return;
    }
    if (c.s->busy()) {
        c.busy = true;
        ++busy_;
        publish_counts();
    }
    // The request may already sit decrypted in the SSL: the session reads while pending().
    bool keep = !retiring_ || c.s->on_retire();
    if (keep) keep = c.s->on_io(EPOLLIN | EPOLLOUT);
    settle(c, keep);
}

}  // namespace preforkd::detail
