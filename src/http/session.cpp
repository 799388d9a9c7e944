#include "http/session.hpp"

#include <sys/epoll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <preforkd/detail/address.hpp>
#include <preforkd/detail/text.hpp>
#include <typeinfo>

#include "http/access_log.hpp"
#include "http/error_page.hpp"
#include "http/router.hpp"

namespace preforkd::http {

namespace {
constexpr size_t sendfile_chunk = 4u << 20;

int64_t monotonic_us() noexcept {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<int64_t>(t.tv_sec) * 1000000 + t.tv_nsec / 1000;
}
}  // namespace

http_session::http_session(http_service& svc, accepted_connection&& conn)
    : svc_(svc),
      ctx_(svc.ctx()),
      cfg_(svc.settings()),
      io_(*conn.io),
      // plain_transport is final: comparing the type_info is the whole test, cheaper than
      // a dynamic_cast on every accepted connection.
      plain_(typeid(*conn.io) == typeid(plain_transport) ? static_cast<plain_transport*>(conn.io)
                                                         : nullptr),
      peer_(conn.peer),
      log_format_(effective_access_format(svc.ctx().cfg().log.access_format,
                                          svc.settings().sites_configured)),
      tls_version_(conn.tls_version),
      listener_(conn.listener),
      parser_(svc.settings().max_header_bytes) {
    // Responses leave in whole writes (coalesced heads and small bodies, `more` before
    // sendfile), so Nagle could only delay the last segment of each: the worker sets
    // TCP_NODELAY on its listeners, and accepted sockets inherit it (no call here).
    idle_since_ = ctx_.now_ms();
    set_deadline(idle_since_ + cfg_.header_timeout.count());
    const auto& listen = ctx_.cfg().server.listen;
    secure_ = conn.listener < listen.size() && listen[conn.listener].tls;
}

http_session::~http_session() {
    return_buffers();
    if (out_.empty()) svc_.buffers().give_output(out_);
}

bool http_session::take_buffers() noexcept {
    try {
        if (!in_) {
            in_ = svc_.buffers().take_buffer();
            in_cap_ = svc_.buffers().input_capacity();
        }
        if (out_.empty() && out_.capacity() < output_reserve) svc_.buffers().take_output(out_);
        return true;
    } catch (...) {
        return false;  // out of memory: the connection closes
    }
}

void http_session::return_buffers() noexcept {
    if (in_cap_ == svc_.buffers().input_capacity())
        svc_.buffers().give_buffer(std::move(in_));
    else
        in_.reset();  // grown for a long head: not a spare
    in_cap_ = 0;
    in_start_ = in_end_ = 0;
}

bool http_session::on_io(uint32_t events) noexcept {
    if (events & EPOLLERR) return false;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) read_ready_ = true;
    // The FIN came, maybe in the same segment as a request: the short read that empties
    // the socket would hide it (no edge follows), so read on to the EOF and close at once
    // after the answer instead of waiting for keepalive_timeout.
    if (events & (EPOLLRDHUP | EPOLLHUP)) peer_fin_ = true;
    return run();
}

bool http_session::on_deadline() noexcept {
    const int64_t now = ctx_.now_ms();
    if (deadline_ms() != 0 && now < deadline_ms()) return true;
    if (phase_ == phase::lingering) return false;  // linger over
    // Queued output: either a long write yielded (resume it) or the client stopped reading.
    if (has_output()) return now < send_deadline_ && run();
    if (phase_ == phase::reading_head && head_started_ >= 0) {
        // Part of a head came, the rest did not in time (RFC 9110 section 15.5.9).
        if (!take_buffers()) return false;
        try {
            answer_error_now(408);
        } catch (...) {
            return false;
        }
        in_start_ = in_end_ = 0;
        head_started_ = -1;
        return run();
    }
    return false;  // idle keep-alive, a silent new connection, or a stalled body
}

bool http_session::on_retire() noexcept {
    // Nothing is closed here: an idle connection may have a request on its way. The next
    // response says Connection: close; the keep-alive deadline still ends an idle one.
    retiring_ = true;
    return true;
}

// The state machine: each turn acts on the current phase until the connection must wait
// for the socket (true) or ends (false).
bool http_session::run() noexcept {
    if ((!in_ || out_.capacity() < output_reserve) && !take_buffers()) return false;
    for (;;) {
        switch (phase_) {
            case phase::reading_head:
            case phase::draining_body: {
                consume_input();
                if (!reading()) continue;  // an answer must go first
                // Everything buffered is answered: send it, then read on.
                if (has_output()) {
                    const step s = send_queued();
                    if (s != step::go_on) return s == step::wait;
                }
                if (peer_eof_) return false;  // all answered, and nothing more will come
                if (!read_ready_) return wait_for_input();
                if (!read_some()) return false;
                continue;
            }
            case phase::writing: {
                const step s = send_queued();
                if (s != step::go_on) return s == step::wait;
                phase_ = drain_left_ > 0 ? phase::draining_body : phase::reading_head;
                continue;
            }
            case phase::closing:
            case phase::closing_linger: {
                const step s = send_queued();
                if (s != step::go_on) return s == step::wait;
                return begin_close();
            }
            case phase::lingering:
                return linger();
        }
    }
}

// Turns buffered bytes into queued answers, until the input runs out (the phase stays
// reading_head or draining_body) or output must go first (writing, closing...).
void http_session::consume_input() noexcept {
    for (;;) {
        if (file_ || out_.size() - out_sent_ >= coalesce_limit) {
            phase_ = phase::writing;
            return;
        }
        if (phase_ == phase::draining_body) {
            size_t take = static_cast<size_t>(std::min<uint64_t>(drain_left_, in_end_ - in_start_));
            in_start_ += take;
            drain_left_ -= take;
            if (drain_left_ > 0) return;
            phase_ = phase::reading_head;
        }
        if (in_start_ == in_end_) {
            in_start_ = in_end_ = 0;
            return;
        }
        if (head_started_ < 0) {
            // The first head of a connection is timed from the accept (idle_since_ until a
            // first answer), like nginx's client_header_timeout: a client silent for most of
            // header_timeout must not get a second one with its first byte. A later head is
            // timed from its first byte, the wait before it being keepalive_timeout's.
            head_started_ = served_ == 0 ? idle_since_ : ctx_.now_ms();
            // The loop's ms clock is too coarse for duration_us: read the clock, for json only.
            if (log_format_ == access_log_format::json) started_us_ = monotonic_us();
        }
        std::string_view data(in_.get() + in_start_, in_end_ - in_start_);
        try {
            switch (parser_.parse(data)) {
                case parse_status::need_more:
                    return;
                case parse_status::error:
                    answer_error_now(parser_.error_status());
                    in_start_ = in_end_ = 0;  // nothing after a bad head can be trusted
                    head_started_ = -1;
                    return;
                case parse_status::done:
                    answer_request();
                    in_start_ += parser_.head_length();
                    parser_.reset();
                    head_started_ = -1;
                    if (closing()) {
                        in_start_ = in_end_ = 0;
                        return;
                    }
                    if (drain_left_ > 0) phase_ = phase::draining_body;
                    break;
            }
        } catch (...) {
            // Out of memory while answering: give up on this connection, politely.
            phase_ = phase::closing_linger;
            return;
        }
    }
}

http_session::step http_session::send_queued() noexcept {
    switch (flush()) {
        case flush_result::done:
            return step::go_on;
        case flush_result::blocked:
            send_deadline_ = ctx_.now_ms() + send_timeout_ms;
            set_deadline(send_deadline_);
            update_busy();
            return step::wait;
        case flush_result::yield:
            // Let other clients in: the loop calls on_deadline() on its next turn.
            send_deadline_ = ctx_.now_ms() + send_timeout_ms;
            set_deadline(ctx_.now_ms());
            update_busy();
            return step::wait;
        case flush_result::failed:
            break;
    }
    return step::close;
}

bool http_session::read_some() noexcept {
    if (in_start_ > 0) {
        // Keep the partial request at the front; the parser works on offsets.
        std::memmove(in_.get(), in_.get() + in_start_, in_end_ - in_start_);
        in_end_ -= in_start_;
        in_start_ = 0;
    }
    if (in_end_ == in_cap_) {
        // A head longer than the usual buffer: grow up to what max_header_bytes needs.
        // (The parser refuses a head longer than that before the buffer fills.)
        buffer_pool& pool = svc_.buffers();
        if (in_cap_ >= pool.max_input_capacity()) return false;
        const size_t cap = std::min(in_cap_ * 2, pool.max_input_capacity());
        auto bigger = std::unique_ptr<char[]>(new (std::nothrow) char[cap]);
        if (!bigger) return false;
        std::memcpy(bigger.get(), in_.get(), in_end_);
        if (in_cap_ == pool.input_capacity()) pool.give_buffer(std::move(in_));
        in_ = std::move(bigger);
        in_cap_ = cap;
    }
    const size_t space = in_cap_ - in_end_;
    for (;;) {
        const ssize_t n = io_read(in_.get() + in_end_, space);
        if (n > 0) {
            in_end_ += static_cast<size_t>(n);
            // A short read emptied the socket: the next byte brings a new edge, so the
            // EAGAIN read that would confirm it is skipped. Not when the transport holds
            // bytes of its own (no edge announces them), nor after the FIN (none follows).
            if (static_cast<size_t>(n) < space && io_pending() == 0 && !peer_fin_)
                read_ready_ = false;
            return true;
        }
        if (n == 0) {
            peer_eof_ = true;
            read_ready_ = false;
            return true;
        }
        if (errno == EINTR) continue;  // a transport should retry it; harmless if not
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            read_ready_ = false;
            return true;
        }
        return false;
    }
}

bool http_session::wait_for_input() noexcept {
    int64_t at;
    if (phase_ == phase::draining_body)
        at = drain_until_;  // set once, when the head was done: never extended by a trickle
    else if (head_started_ >= 0)
        at = head_started_ + cfg_.header_timeout.count();  // never extended by a trickle
    else
        at = idle_since_ + (served_ > 0 ? cfg_.keepalive_timeout : cfg_.header_timeout).count();
    set_deadline(at);
    // Idle between requests: the input buffer goes back to the service until bytes come.
    if (phase_ == phase::reading_head && head_started_ < 0 && in_start_ == in_end_)
        return_buffers();
    update_busy();
    return true;
}

http_session::flush_result http_session::flush() noexcept {
    uint64_t written = 0;
    while (out_sent_ < out_.size()) {
        const size_t len = out_.size() - out_sent_;
        // `more` before a sendfile body: the head and the first bytes share a segment.
        // And before a close: the kernel holds the last bytes until close() or
        // shutdown() (called right after: see run()), which tacks the FIN onto them, so the
        // client gets the answer and the end in one segment: one packet, one wake-up and
        // one read fewer per connection for it (measured with wrk: 10% less client CPU).
        const ssize_t n = io_write(out_.data() + out_sent_, len, file_ || closing());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return flush_result::blocked;
            return flush_result::failed;
        }
        out_sent_ += static_cast<size_t>(n);
        written += static_cast<uint64_t>(n);
        if (static_cast<size_t>(n) < len) return flush_result::blocked;  // buffer full
    }
    out_.clear();
    out_sent_ = 0;
    while (file_) {
        if (file_left_ == 0) {
            file_.reset();
            break;
        }
        if (written >= write_budget) return flush_result::yield;  // let other clients in
        size_t chunk = static_cast<size_t>(std::min<uint64_t>(file_left_, sendfile_chunk));
        off_t off = static_cast<off_t>(file_off_);
        const ssize_t n = io_.sendfile(file_->fd.get(), &off, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return flush_result::blocked;
            return flush_result::failed;
        }
        if (n == 0) {
            // The file shrank under us: the Content-Length was promised and cannot be kept,
            // so the connection is cut short, and the operator should know why.
            if (ctx_.log().enabled(log_level::warn)) {
                if (peer_len_ == 0) peer_len_ = preforkd::detail::format_host(peer_, peer_text_);
                ctx_.log().warn("http: /{} shrank while it was sent to {}: {} bytes short",
                                preforkd::detail::hex_escaped(file_->open_path),
                                std::string_view(peer_text_, peer_len_), file_left_);
            }
            return flush_result::failed;
        }
        file_off_ += static_cast<uint64_t>(n);
        file_left_ -= static_cast<uint64_t>(n);
        written += static_cast<uint64_t>(n);
    }
    idle_since_ = ctx_.now_ms();
    return flush_result::done;
}

bool http_session::begin_close() noexcept {
    // Closing with unread input makes the kernel send RST, which can destroy the response
    // before the client reads it: shut our side and discard input for a while first.
    if (phase_ != phase::closing_linger && in_start_ == in_end_ && !read_ready_) return false;
    phase_ = phase::lingering;
    io_.shutdown_write();
    linger_until_ = ctx_.now_ms() + linger_timeout_ms;
    in_start_ = in_end_ = 0;
    return linger();
}

bool http_session::linger() noexcept {
    set_busy(false);
    for (;;) {
        const ssize_t n = io_read(in_.get(), in_cap_);
        if (n > 0) {
            lingered_ += static_cast<uint64_t>(n);
            if (lingered_ > max_linger_bytes) return false;
            continue;
        }
        if (n == 0) return false;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            set_deadline(linger_until_);
            return true;
        }
        return false;
    }
}

void http_session::update_busy() noexcept {
    set_busy(head_started_ >= 0 || has_output() || drain_left_ > 0 || in_end_ > in_start_);
}

// ---- answering: the router and the handlers fill an exchange; the session sends it ----

bool http_session::keep_alive_for(const request_head& h) const noexcept {
    bool wanted =
        h.version_minor >= 1 ? !h.connection_close : h.connection_keep_alive && !h.connection_close;
    if (!wanted || retiring_ || ctx_.retiring() || cfg_.keepalive_timeout.count() <= 0)
        return false;
    // Draining (TERM with server.shutdown_delay): each client leaves after its answer and
    // reconnects through the balancer, which by then sends it elsewhere. One relaxed load
    // of a line the supervisor writes about never.
    if (ctx_.board().header().draining.load(std::memory_order_relaxed) != 0) return false;
    return cfg_.max_keepalive_requests == 0 || served_ + 1 < cfg_.max_keepalive_requests;
}

void http_session::answer_request() {
    const request_head& h = parser_.head();
    exchange x(svc_, out_, combined_, peer_);
    x.head = &h;
    x.request_line = h.request_line;
    x.minor = h.version_minor;
    x.head_only = h.method == method_t::head;
    x.keep = keep_alive_for(h);
    x.secure = secure_;
    route(x, path_);
    finish(x);
}

void http_session::answer_error_now(int status) {
    // The buffered bytes of the failed head, for the access log: an attack leaves a trace.
    const std::string_view data(in_.get() + in_start_, in_end_ - in_start_);
    exchange x(svc_, out_, combined_, peer_);
    x.request_line = request_line_prefix(data);
    // A HEAD gets the head of the error page alone (RFC 9110 section 9.3.2), as soon as
    // its method token was read, even if its headers were bad.
    x.head_only = parser_.method() == method_t::head;
    answer_error(x, status, false);
    finish(x);
}

void http_session::finish(exchange& x) noexcept {
    ++served_;
    ctx_.count_request(x.head_bytes + x.body_bytes);
    ctx_.count_response(x.status);
    log_access(x);
    if (x.file) {
        file_ = std::move(x.file);
        file_off_ = x.file_offset;
        file_left_ = x.body_bytes;
    }
    if (!x.keep) {
        phase_ = x.linger ? phase::closing_linger : phase::closing;
        return;
    }
    drain_left_ = x.drain;
    // One deadline for the whole body, set now and never moved by a trickle. It counts from
    // the end of the head rather than from its start: the head had its own header_timeout,
    // and a client whose head came late but in time must still get the same budget for up
    // to 64 KiB; the request is still bounded (2 x header_timeout at most).
    if (drain_left_ > 0) drain_until_ = ctx_.now_ms() + cfg_.header_timeout.count();
}

void http_session::log_access(const exchange& x) noexcept {
    // A site with its own access_log writes there; every other answer to log.access.
    const int fd = x.vhost ? svc_.access_log_fd(x.site_index) : ctx_.access_log_fd();
    if (fd < 0) return;  // log.access = "off": nothing formatted, nothing written
    if (peer_len_ == 0) peer_len_ = preforkd::detail::format_host(peer_, peer_text_);
    access_record r;
    r.client = std::string_view(peer_text_, peer_len_);
    r.time = svc_.dates().log_time();
    r.request_line = x.request_line;
    r.status = x.status;
    r.body_bytes = x.body_bytes;
    if (x.head) {
        r.referer = x.head->referer;
        r.user_agent = x.head->user_agent;
        if (x.head->has_host) r.host = x.head->host;
    }
    std::string listener;
    if (log_format_ != access_log_format::combined) {
        const auto& listen = ctx_.cfg().server.listen;
        if (listener_ < listen.size()) {
            r.port = listen[listener_].port;
            if (r.host.empty() && log_format_ == access_log_format::vhost_combined) {
                try {
                    listener = listen[listener_].to_string();
                } catch (...) {
                }
                r.listener = listener;
            }
        }
    }
    if (log_format_ == access_log_format::json) {
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        r.unix_ms = static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
        r.duration_us = started_us_ > 0 ? monotonic_us() - started_us_ : 0;
        r.tls = tls_version_;
    }
    write_access_line(fd, log_format_, r, svc_.line_buffer());
}

}  // namespace preforkd::http
