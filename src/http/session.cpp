#include "http/session.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <preforkd/clock.hpp>

#include "http/access_log.hpp"
#include "http/path.hpp"
#include "http/request_parser.hpp"
#include "http/status_page.hpp"

namespace preforkd::http {

namespace {

constexpr std::string_view html_type = "Content-Type: text/html; charset=utf-8\r\n";
constexpr size_t sendfile_chunk = 4u << 20;

bool query_has(std::string_view query, std::string_view word) noexcept {
    while (!query.empty()) {
        size_t amp = query.find('&');
        if (query.substr(0, amp) == word) return true;
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

// Percent-encodes a decoded path for a Location header: RFC 3986 pchar and '/' stay.
void append_encoded_path(std::string& out, std::string_view path) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : path) {
        unsigned char c = static_cast<unsigned char>(ch);
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     std::string_view("-._~!$&'()*+,;=:@/").find(ch) != std::string_view::npos;
        if (plain) {
            out.push_back(ch);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            out.append(esc, 3);
        }
    }
}

// A decoded path as the error log shows it. It is the client's bytes: control bytes (which
// the logger would only blank out, so that "%0a" and "%20" looked alike) and bytes >= 0x80
// (which a terminal may take for controls too) become \xhh, and so does '\' itself, so
// that the line says unambiguously which bytes were asked for.
std::string escape_for_log(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            const char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            out.append(esc, 4);
        } else {
            out.push_back(ch);
        }
    }
    return out;
}

}  // namespace

class http_session final : public session {
  public:
    http_session(http_service& svc, accepted_connection&& conn);
    ~http_session() override;

    bool on_io(uint32_t events) noexcept override;
    bool on_deadline() noexcept override;
    bool on_retire() noexcept override;

  private:
    enum class flush_result : uint8_t { done, blocked, yield, failed };

    bool run() noexcept;
    bool process_input() noexcept;
    flush_result flush() noexcept;
    bool read_some() noexcept;
    bool wait_for_input() noexcept;
    // The input buffer is lent by the service while a request is read and answered, and
    // given back while the connection waits idle: an idle keep-alive connection holds
    // none, and the few in use stay warm in the cache. The output string (smaller, and
    // dearer to lend: a std::string swap costs more than the rest of the round trip) is
    // taken once and given back when the session ends.
    bool take_buffers() noexcept;  // false: out of memory
    void return_buffers() noexcept;
    bool begin_close() noexcept;
    bool linger() noexcept;
    void update_busy() noexcept;
    bool has_output() const noexcept { return out_sent_ < out_.size() || file_ != nullptr; }

    void handle();
    void serve_file(const std::shared_ptr<file_entry>& e, const request_head& h, bool keep);
    void serve_status(const request_head& h, std::string_view query, bool keep);
    // A small HTML page for `status`; `close` adds Connection: close and lingers after it.
    void respond_page(int status, bool keep, int minor, bool head_only,
                      std::string_view request_line, const request_head* h,
                      std::string_view extra_lines = {});
    void finish_response(int status, uint64_t head_bytes, uint64_t body_bytes, bool keep,
                         std::string_view request_line, const request_head* h) noexcept;
    void log_access(int status, uint64_t body_bytes, std::string_view request_line,
                    const request_head* h) noexcept;
    bool keep_alive_for(const request_head& h) const noexcept;

    http_service& svc_;
    worker_context& ctx_;
    const http_settings& cfg_;
    transport& io_;  // owned by the worker, valid while this session lives
    sockaddr_storage peer_{};
    char peer_text_[64] = {};
    size_t peer_len_ = 0;

    std::unique_ptr<char[]> in_;
    size_t in_cap_ = 0;
    size_t in_start_ = 0;  // first byte not yet consumed
    size_t in_end_ = 0;
    request_parser parser_;
    std::string path_;      // normalised path of the current request, reused
    std::string combined_;  // repeated If-None-Match lines as one list: empty until needed

    std::string out_;
    size_t out_sent_ = 0;
    std::shared_ptr<file_entry> file_;  // a sendfile body queued after out_
    uint64_t file_off_ = 0;
    uint64_t file_left_ = 0;

    uint64_t drain_left_ = 0;  // body bytes of the last request still to discard
    int64_t drain_until_ = 0;  // when a body being discarded must have arrived
    uint64_t served_ = 0;      // responses on this connection
    int64_t idle_since_ = 0;
    int64_t head_started_ = 0;  // what header_timeout counts from for the head being read
    int64_t linger_until_ = 0;
    uint64_t lingered_ = 0;
    bool in_head_ = false;      // some bytes of a request head have arrived
    bool close_after_ = false;  // the queued output ends the connection
    bool must_linger_ = false;  // an error: the client may still be sending
    bool lingering_ = false;
    bool read_ready_ = true;  // edge-triggered: the socket may hold unread bytes
    bool peer_eof_ = false;
    bool retiring_ = false;
    bool yielded_ = false;  // the deadline was set to now to resume a long write
};

// ---- service -------------------------------------------------------------------------

http_service::http_service(worker_context& ctx, const http_settings& settings)
    : ctx_(ctx),
      settings_(settings),
      cache_(settings),
      dates_(std::string("preforkd/") + PREFORKD_VERSION) {
    // Room for the largest head plus some of what follows it; a connection starts with a
    // smaller buffer and grows to this only when a head needs it (see read_some).
    max_input_capacity_ = size_t{settings.max_header_bytes} + 4096;
    input_capacity_ = std::min<size_t>(max_input_capacity_, 16 * 1024);
    if (!settings.status_path.empty() &&
        normalize_path(settings.status_path, true, status_key_) == path_result::ok)
        status_enabled_ = true;
    line_.reserve(1024);
}

http_service::~http_service() = default;

std::unique_ptr<char[]> http_service::take_buffer() {
    if (spare_buffers_.empty()) return std::make_unique<char[]>(input_capacity_);
    auto b = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
    return b;
}

void http_service::give_buffer(std::unique_ptr<char[]> b) noexcept {
    if (!b || spare_buffers_.size() >= 64) return;
    try {
        spare_buffers_.push_back(std::move(b));
    } catch (...) {
        // dropped: freed by its destructor
    }
}

// Swaps rather than moves: on the hot path (every keep-alive request) a swap with a slot
// that stays in the vector is a few stores, with no construction or destruction.
void http_service::take_output(std::string& out) {
    if (spare_out_count_ > 0) {
        out.swap(spare_outputs_[--spare_out_count_]);
    } else {
        // Room for a head and a small file: no growth steps for the usual response.
        out.reserve(output_reserve);
    }
}

void http_service::give_output(std::string& out) noexcept {
    // A buffer that grew for a burst of pipelined responses is not worth keeping, nor one
    // that never got its reserve.
    const size_t cap = out.capacity();
    if (cap >= output_reserve && cap <= coalesce_limit * 2 && spare_out_count_ < 64) {
        out.clear();
        try {
            if (spare_out_count_ == spare_outputs_.size()) spare_outputs_.emplace_back();
            out.swap(spare_outputs_[spare_out_count_++]);
            return;
        } catch (...) {
            // no slot: freed below
        }
    }
    std::string().swap(out);
}

std::unique_ptr<session> http_service::open(accepted_connection&& conn) noexcept {
    try {
        return std::make_unique<http_session>(*this, std::move(conn));
    } catch (...) {
        return nullptr;  // out of memory: the loop closes the connection
    }
}

std::unique_ptr<service> make_http_service(worker_context& ctx) {
    if (!ctx.cfg().app) {
        ctx.log().crit("http: the configuration carries no [http] settings");
        return nullptr;
    }
    return std::make_unique<http_service>(ctx, ctx.cfg().app_settings<http_settings>());
}

// ---- session: I/O --------------------------------------------------------------------

http_session::http_session(http_service& svc, accepted_connection&& conn)
    : svc_(svc),
      ctx_(svc.ctx()),
      cfg_(svc.settings()),
      io_(*conn.io),
      peer_(conn.peer),
      parser_(svc.settings().max_header_bytes) {
    // Responses leave in whole writes (coalesced heads and small bodies, MSG_MORE before
    // sendfile), so Nagle could only delay the last segment of each: the worker sets
    // TCP_NODELAY on its listeners, and accepted sockets inherit it (no call here).
    idle_since_ = ctx_.now_ms();
    set_deadline(idle_since_ + cfg_.header_timeout.count());
}

http_session::~http_session() {
    return_buffers();
    if (out_.empty()) svc_.give_output(out_);
}

bool http_session::take_buffers() noexcept {
    try {
        if (!in_) {
            in_ = svc_.take_buffer();
            in_cap_ = svc_.input_capacity();
        }
        if (out_.empty() && out_.capacity() < output_reserve) svc_.take_output(out_);
        return true;
    } catch (...) {
        return false;  // out of memory: the connection closes
    }
}

void http_session::return_buffers() noexcept {
    if (in_cap_ == svc_.input_capacity())
        svc_.give_buffer(std::move(in_));
    else
        in_.reset();  // grown for a long head: not a spare
    in_cap_ = 0;
    in_start_ = in_end_ = 0;
}

bool http_session::on_io(uint32_t events) noexcept {
    if (events & EPOLLERR) return false;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) read_ready_ = true;
    return run();
}

bool http_session::on_deadline() noexcept {
    if (yielded_) {
        yielded_ = false;
        return run();
    }
    if (deadline_ms() != 0 && ctx_.now_ms() < deadline_ms()) return true;
    if (lingering_ || has_output()) return false;  // linger over, or the client stopped reading
    if (in_head_) {
        // Part of a head came, the rest did not in time (RFC 9110 section 15.5.9).
        in_start_ = in_end_ = 0;
        in_head_ = false;
        if (!take_buffers()) return false;
        try {
            respond_page(408, false, 1, parser_.method() == method_t::head, {}, nullptr);
        } catch (...) {
            return false;
        }
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

bool http_session::run() noexcept {
    if ((!in_ || out_.capacity() < output_reserve) && !take_buffers()) return false;
    for (;;) {
        const bool wants_input = lingering_ || process_input();
        if (has_output()) {
            switch (flush()) {
                case flush_result::failed:
                    return false;
                case flush_result::blocked:
                    set_deadline(ctx_.now_ms() + send_timeout_ms);
                    update_busy();
                    return true;
                case flush_result::yield:
                    yielded_ = true;
                    set_deadline(ctx_.now_ms());
                    update_busy();
                    return true;
                case flush_result::done:
                    break;
            }
        }
        if (close_after_) return begin_close();
        if (lingering_) return linger();
        if (!wants_input) continue;   // stopped to flush; more requests may be buffered
        if (peer_eof_) return false;  // all answered, and nothing more will come
        if (!read_ready_) return wait_for_input();
        if (!read_some()) return false;
    }
}

// Turns buffered bytes into queued responses. Returns true when it stopped for lack of
// input, false when output must go first (a sendfile body, a close, enough queued).
bool http_session::process_input() noexcept {
    for (;;) {
        if (close_after_ || file_ || out_.size() - out_sent_ >= coalesce_limit) return false;
        if (drain_left_ > 0) {
            size_t take = static_cast<size_t>(std::min<uint64_t>(drain_left_, in_end_ - in_start_));
            in_start_ += take;
            drain_left_ -= take;
            if (drain_left_ > 0) return true;
        }
        if (in_start_ == in_end_) {
            in_start_ = in_end_ = 0;
            return true;
        }
        if (!in_head_) {
            in_head_ = true;
            // The first head of a connection is timed from the accept (idle_since_ until a
            // first answer), like nginx's client_header_timeout: a client silent for most of
            // header_timeout must not get a second one with its first byte. A later head is
            // timed from its first byte, the wait before it being keepalive_timeout's.
            head_started_ = served_ == 0 ? idle_since_ : ctx_.now_ms();
        }
        std::string_view data(in_.get() + in_start_, in_end_ - in_start_);
        try {
            switch (parser_.parse(data)) {
                case parse_status::need_more:
                    return true;
                case parse_status::error:
                    // A HEAD gets the head of the error page alone (RFC 9110 section 9.3.2),
                    // as soon as its method token was read, even if its headers were bad.
                    respond_page(parser_.error_status(), false, 1,
                                 parser_.method() == method_t::head, parser_.request_line(data),
                                 nullptr);
                    in_start_ = in_end_ = 0;  // nothing after a bad head can be trusted
                    in_head_ = false;
                    return false;
                case parse_status::done:
                    handle();
                    in_start_ += parser_.head_length();
                    parser_.reset();
                    in_head_ = false;
                    if (close_after_) in_start_ = in_end_ = 0;
                    break;
            }
        } catch (...) {
            // Out of memory while answering: give up on this connection, politely.
            close_after_ = true;
            must_linger_ = true;
            return false;
        }
    }
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
        if (in_cap_ >= svc_.max_input_capacity()) return false;
        const size_t cap = std::min(in_cap_ * 2, svc_.max_input_capacity());
        auto bigger = std::unique_ptr<char[]>(new (std::nothrow) char[cap]);
        if (!bigger) return false;
        std::memcpy(bigger.get(), in_.get(), in_end_);
        if (in_cap_ == svc_.input_capacity()) svc_.give_buffer(std::move(in_));
        in_ = std::move(bigger);
        in_cap_ = cap;
    }
    const size_t space = in_cap_ - in_end_;
    for (;;) {
        ssize_t n = io_.read(in_.get() + in_end_, space);
        if (n > 0) {
            in_end_ += static_cast<size_t>(n);
            // A short read emptied the socket: the next byte brings a new edge, so the
            // EAGAIN read that would confirm it is skipped.
            if (static_cast<size_t>(n) < space) read_ready_ = false;
            return true;
        }
        if (n == 0) {
            peer_eof_ = true;
            read_ready_ = false;
            return true;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            read_ready_ = false;
            return true;
        }
        return false;
    }
}

bool http_session::wait_for_input() noexcept {
    int64_t at;
    if (in_head_)
        at = head_started_ + cfg_.header_timeout.count();  // never extended by a trickle
    else if (drain_left_ > 0)
        at = drain_until_;  // set once, when the head was done: never extended by a trickle
    else
        at = idle_since_ + (served_ > 0 ? cfg_.keepalive_timeout : cfg_.header_timeout).count();
    set_deadline(at);
    // Idle between requests: the input buffer goes back to the service until bytes come.
    if (!in_head_ && in_start_ == in_end_ && drain_left_ == 0) return_buffers();
    update_busy();
    return true;
}

http_session::flush_result http_session::flush() noexcept {
    uint64_t written = 0;
    while (out_sent_ < out_.size()) {
        const size_t len = out_.size() - out_sent_;
        // MSG_MORE before a sendfile body: the head and the first bytes share a segment.
        // And before a close: the kernel holds the last bytes until close() or
        // shutdown() (called right after: see run()), which tacks the FIN onto them, so the
        // client gets the answer and the end in one segment: one packet, one wake-up and
        // one read fewer per connection for it (measured with wrk: 10% less client CPU).
        ssize_t n = io_.write(out_.data() + out_sent_, len, file_ || close_after_);
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
        ssize_t n = io_.sendfile(file_->fd.get(), &off, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return flush_result::blocked;
            return flush_result::failed;
        }
        if (n == 0) return flush_result::failed;  // the file shrank: the length was promised
        file_off_ += static_cast<uint64_t>(n);
        file_left_ -= static_cast<uint64_t>(n);
        written += static_cast<uint64_t>(n);
    }
    idle_since_ = ctx_.now_ms();
    return flush_result::done;
}

bool http_session::begin_close() noexcept {
    close_after_ = false;
    // Closing with unread input makes the kernel send RST, which can destroy the response
    // before the client reads it: shut our side and discard input for a while first.
    if (!must_linger_ && in_start_ == in_end_ && !read_ready_) return false;
    io_.shutdown_write();
    lingering_ = true;
    linger_until_ = ctx_.now_ms() + linger_timeout_ms;
    in_start_ = in_end_ = 0;
    return linger();
}

bool http_session::linger() noexcept {
    set_busy(false);
    for (;;) {
        ssize_t n = io_.read(in_.get(), in_cap_);
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
    set_busy(in_head_ || has_output() || drain_left_ > 0 || in_end_ > in_start_);
}

// ---- session: requests ---------------------------------------------------------------

bool http_session::keep_alive_for(const request_head& h) const noexcept {
    bool wanted =
        h.version_minor >= 1 ? !h.connection_close : h.connection_keep_alive && !h.connection_close;
    if (!wanted || retiring_ || ctx_.retiring() || cfg_.keepalive_timeout.count() <= 0)
        return false;
    return cfg_.max_keepalive_requests == 0 || served_ + 1 < cfg_.max_keepalive_requests;
}

void http_session::handle() {
    const request_head& h = parser_.head();
    const bool head_only = h.method == method_t::head;
    svc_.dates().update(::time(nullptr));

    if (h.method != method_t::get && h.method != method_t::head) {
        // RFC 9110 section 15.5.6 / 15.6.2: known but not allowed here, or unknown. The
        // body, if any, is not read: the connection closes after the answer.
        respond_page(h.method == method_t::other ? 501 : 405, false, h.version_minor, false,
                     h.request_line, &h, h.method == method_t::other ? "" : "Allow: GET, HEAD\r\n");
        return;
    }
    if (h.has_transfer_encoding) {
        // A chunked body on GET/HEAD is not decoded: ask for a Content-Length instead
        // (411), or say the coding is not implemented (501), and close.
        respond_page(h.transfer_encoding_chunked_only ? 411 : 501, false, h.version_minor,
                     head_only, h.request_line, &h);
        return;
    }
    if (h.content_length > max_drained_body) {
        respond_page(413, false, h.version_minor, head_only, h.request_line, &h);
        return;
    }
    // A small body on GET/HEAD has no meaning but must be read past, or its bytes would be
    // parsed as the next request.
    drain_left_ = h.content_length;
    // One deadline for the whole body, set now and never moved by a trickle. It counts from
    // the end of the head rather than from its start: the head had its own header_timeout,
    // and a client whose head came late but in time must still get the same budget for up
    // to 64 KiB; the request is still bounded (2 x header_timeout at most).
    if (drain_left_ > 0) drain_until_ = ctx_.now_ms() + cfg_.header_timeout.count();
    const bool keep = keep_alive_for(h);

    target_parts parts = split_target(h.target, h.form);
    switch (normalize_path(parts.path, cfg_.serve_hidden, path_)) {
        case path_result::bad_request:
            respond_page(400, false, h.version_minor, head_only, h.request_line, &h);
            return;
        case path_result::hidden:
            respond_page(404, keep, h.version_minor, head_only, h.request_line, &h);
            return;
        case path_result::ok:
            break;
    }
    if (svc_.status_enabled_ && path_ == svc_.status_key()) {
        serve_status(h, parts.query, keep);
        return;
    }

    const std::shared_ptr<file_entry>& e = svc_.cache().lookup(path_, ctx_.now_ms() / 1000);
    switch (e->kind) {
        case lookup_kind::file:
            serve_file(e, h, keep);
            return;
        case lookup_kind::redirect: {
            // Built from the normalised path, never from the raw one: "//host" collapsed to
            // "host" must not come back as a scheme-relative "//host/" (an open redirect).
            std::string location;
            location.reserve(path_.size() * 3 + parts.query.size() + 16);
            location.append("Location: /");
            append_encoded_path(location, path_);
            location.push_back('/');
            if (!parts.query.empty()) {
                location.push_back('?');
                location.append(parts.query);
            }
            location.append("\r\n");
            respond_page(301, keep, h.version_minor, head_only, h.request_line, &h, location);
            return;
        }
        case lookup_kind::forbidden:
            respond_page(403, keep, h.version_minor, head_only, h.request_line, &h);
            return;
        case lookup_kind::not_found:
            respond_page(404, keep, h.version_minor, head_only, h.request_line, &h);
            return;
        case lookup_kind::error:
            if (ctx_.log().enabled(log_level::error))
                ctx_.log().error("http: {}: {}",
                                 path_.empty() ? std::string("/") : escape_for_log(path_),
                                 std::strerror(e->err));
            respond_page(500, keep, h.version_minor, head_only, h.request_line, &h);
            return;
    }
}

void http_session::serve_file(const std::shared_ptr<file_entry>& e, const request_head& h,
                              bool keep) {
    const bool head_only = h.method == method_t::head;
    const size_t head_start = out_.size();
    head_writer w(out_);

    // RFC 9110 section 13.2.2: If-None-Match first; If-Modified-Since only without it.
    std::string_view if_none_match = h.if_none_match;
    if (h.if_none_match_repeated) {
        // Rare: several lines are one list (RFC 9110 section 5.3), built in a string of
        // this session's rather than in the parser, which allocates nothing.
        combine_field_lines(h.bytes, "if-none-match", combined_);
        if_none_match = combined_;
    }
    bool not_modified = false;
    if (!if_none_match.empty()) {
        not_modified = if_none_match_matches(if_none_match, e->etag);
    } else if (!h.if_modified_since.empty() && !h.if_modified_since_repeated) {
        // A repeated If-Modified-Since is a list, never a valid HTTP-date: ignored
        // (RFC 9110 section 13.1.3).
        time_t since = 0;
        not_modified = parse_http_date(h.if_modified_since, since) && e->mtime_s <= since;
    }
    if (not_modified) {
        w.status(304, svc_.dates());
        w.raw(e->validator_lines);
        w.end(keep, h.version_minor);
        finish_response(304, out_.size() - head_start, 0, keep, h.request_line, &h);
        return;
    }

    byte_range range;
    // Range is defined for GET only (RFC 9110 section 14.2); a repeated one is ignored, and
    // so is one whose If-Range is repeated: a list of validators is no validator, and the
    // whole file is always a correct answer.
    if (h.method == method_t::get && !h.range.empty() && !h.range_repeated &&
        !h.if_range_repeated &&
        (h.if_range.empty() ||
         if_range_matches(h.if_range, e->etag, static_cast<time_t>(e->mtime_s))))
        range = evaluate_range(h.range, e->size);

    if (range.kind == range_kind::unsatisfiable) {
        char cr[48];
        auto r = fmt::format_to_n(cr, sizeof cr, "Content-Range: bytes */{}\r\n", e->size);
        respond_page(416, keep, h.version_minor, head_only, h.request_line, &h,
                     std::string_view(cr, r.size));
        return;
    }
    uint64_t first = 0;
    uint64_t length = e->size;
    if (range.kind == range_kind::partial) {
        first = range.first;
        length = range.length;
        w.status(206, svc_.dates());
        char cr[96];
        auto r = fmt::format_to_n(cr, sizeof cr, "Content-Range: bytes {}-{}/{}\r\n", first,
                                  first + length - 1, e->size);
        w.raw(std::string_view(cr, r.size));
        w.header("Content-Length", length);
        w.raw(e->type_lines);
    } else {
        out_.append(ok_head(*e, svc_.dates()));
    }
    w.end(keep, h.version_minor);
    const uint64_t head_bytes = out_.size() - head_start;
    const int status = range.kind == range_kind::partial ? 206 : 200;
    if (head_only) {
        finish_response(status, head_bytes, 0, keep, h.request_line, &h);
        return;
    }
    if (e->in_memory) {
        out_.append(e->body, static_cast<size_t>(first), static_cast<size_t>(length));
    } else if (length > 0) {
        file_ = e;  // kept alive while it is sent, even if the cache drops it
        file_off_ = first;
        file_left_ = length;
    }
    finish_response(status, head_bytes, length, keep, h.request_line, &h);
}

void http_session::serve_status(const request_head& h, std::string_view query, bool keep) {
    const bool head_only = h.method == method_t::head;
    if (!cfg_.status_allowed(peer_)) {
        respond_page(403, keep, h.version_minor, head_only, h.request_line, &h);
        return;
    }
    status_snapshot snap = take_snapshot(ctx_.board(), ctx_.now_ms(), wall_ms());
    std::string& body = svc_.line_buffer();
    body.clear();
    const bool json = query_has(query, "json");
    if (json)
        render_status_json(snap, body);
    else
        render_status_text(snap, PREFORKD_VERSION, body);
    const size_t head_start = out_.size();
    head_writer w(out_);
    w.status(200, svc_.dates());
    w.raw(json ? "Content-Type: application/json\r\n"
               : "Content-Type: text/plain; charset=utf-8\r\n");
    w.raw("Cache-Control: no-store\r\n");
    w.header("Content-Length", body.size());
    w.end(keep, h.version_minor);
    const uint64_t head_bytes = out_.size() - head_start;
    const uint64_t body_bytes = head_only ? 0 : body.size();
    if (!head_only) out_.append(body);
    finish_response(200, head_bytes, body_bytes, keep, h.request_line, &h);
}

void http_session::respond_page(int status, bool keep, int minor, bool head_only,
                                std::string_view request_line, const request_head* h,
                                std::string_view extra_lines) {
    svc_.dates().update(::time(nullptr));
    const size_t head_start = out_.size();
    head_writer w(out_);
    w.status(status, svc_.dates());
    w.raw(html_type);
    w.header("Content-Length", error_body_length(status));
    w.raw(extra_lines);
    w.end(keep, minor);
    const uint64_t head_bytes = out_.size() - head_start;
    uint64_t body_bytes = 0;
    if (!head_only) body_bytes = append_error_body(out_, status);
    if (!keep && status >= 400 && status != 404 && status != 403) must_linger_ = true;
    finish_response(status, head_bytes, body_bytes, keep, request_line, h);
}

void http_session::finish_response(int status, uint64_t head_bytes, uint64_t body_bytes, bool keep,
                                   std::string_view request_line, const request_head* h) noexcept {
    ++served_;
    if (!keep) close_after_ = true;
    ctx_.count_request(head_bytes + body_bytes);
    log_access(status, body_bytes, request_line, h);
}

void http_session::log_access(int status, uint64_t body_bytes, std::string_view request_line,
                              const request_head* h) noexcept {
    const int fd = ctx_.access_log_fd();
    if (fd < 0) return;  // log.access = "off": nothing formatted, nothing written
    if (peer_len_ == 0) peer_len_ = format_peer(peer_, peer_text_);
    std::string& line = svc_.line_buffer();
    line.clear();
    access_record r;
    r.client = std::string_view(peer_text_, peer_len_);
    r.time = svc_.dates().log_time();
    r.request_line = request_line;
    r.status = status;
    r.body_bytes = body_bytes;
    if (h) {
        r.referer = h->referer;
        r.user_agent = h->user_agent;
    }
    try {
        format_access_line(r, line);
    } catch (...) {
        return;
    }
    // One write(2) per line on an O_APPEND file: lines of many workers never interleave.
    for (;;) {
        ssize_t n = ::write(fd, line.data(), line.size());
        if (n < 0 && errno == EINTR) continue;
        break;
    }
}

}  // namespace preforkd::http
