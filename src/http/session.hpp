// One HTTP/1.1 connection: its state machine and its I/O through the worker's transport.
// Answering is not done here: the router (router.hpp) picks a handler for each request.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <preforkd/service.hpp>
#include <string>

#include "http/exchange.hpp"
#include "http/http_service.hpp"
#include "http/request_parser.hpp"

namespace preforkd::http {

class http_session final : public session {
  public:
    http_session(http_service& svc, accepted_connection&& conn);
    ~http_session() override;

    bool on_io(uint32_t events) noexcept override;
    bool on_deadline() noexcept override;
    bool on_retire() noexcept override;

  private:
    // The connection's one state. Output may be queued in any of them but lingering:
    // answers to pipelined requests coalesce while the next head is read.
    enum class phase : uint8_t {
        reading_head,    // between requests (idle), or part of a head has come
        draining_body,   // reading past the body of a GET/HEAD (drain_left_ bytes)
        writing,         // queued output must go before more input is read: a file body,
                         // or coalesce_limit bytes; then back to reading_head/draining_body
        closing,         // the last answer is queued: after it, close (lingering only if
                         // input is left unread)
        closing_linger,  // the last answer (an error) is queued: after it, shut our side
                         // and discard input for a while, since the client may still send
        lingering,       // our side is shut: discarding input until EOF or linger_until_
    };
    enum class flush_result : uint8_t { done, blocked, yield, failed };
    enum class step : uint8_t { go_on, wait, close };

    bool run() noexcept;
    void consume_input() noexcept;
    step send_queued() noexcept;
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
    bool reading() const noexcept {
        return phase_ == phase::reading_head || phase_ == phase::draining_body;
    }
    bool closing() const noexcept {
        return phase_ == phase::closing || phase_ == phase::closing_linger;
    }

    void answer_request();
    void answer_error_now(int status);  // a head that failed or timed out
    void finish(exchange& x) noexcept;
    void log_access(const exchange& x) noexcept;
    bool keep_alive_for(const request_head& h) const noexcept;

    http_service& svc_;
    worker_context& ctx_;
    const http_settings& cfg_;
    transport& io_;
    // io_ when it is a plain_transport (a final class with inline read/write): the hot
    // reads and writes go straight to recv/send instead of through the vtable.
    plain_transport* const plain_;
    ssize_t io_read(void* buf, size_t len) noexcept {
        return plain_ ? plain_->read(buf, len) : io_.read(buf, len);
    }
    ssize_t io_write(const void* buf, size_t len, bool more) noexcept {
        return plain_ ? plain_->write(buf, len, more) : io_.write(buf, len, more);
    }
    size_t io_pending() const noexcept { return plain_ ? 0 : io_.pending(); }
    sockaddr_storage peer_{};
    char peer_text_[INET6_ADDRSTRLEN] = {};
    size_t peer_len_ = 0;
    // For the access log's vhost_combined and json formats.
    const access_log_format log_format_;
    const char* const tls_version_;  // "TLSv1.3"; nullptr on a plain connection
    const uint32_t listener_;        // index into config.server.listen
    int64_t started_us_ = 0;         // json: monotonic us of the request's first byte

    phase phase_ = phase::reading_head;
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
    int64_t head_started_ = -1;  // what header_timeout counts from; -1: no head begun
    int64_t send_deadline_ = 0;  // queued output that makes no progress until then: close
    int64_t linger_until_ = 0;
    uint64_t lingered_ = 0;
    // What the transport has told: facts about the socket, not states of the connection.
    bool read_ready_ = true;  // edge-triggered: the socket may hold unread bytes
    bool peer_fin_ = false;   // EPOLLRDHUP/HUP: the peer's FIN is in, after what is buffered
    bool peer_eof_ = false;   // read() returned 0
    bool retiring_ = false;
    bool secure_ = false;  // accepted on a tls listener (https_redirect leaves it alone)
};

}  // namespace preforkd::http
