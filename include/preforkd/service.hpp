// The event-driven protocol interface: what a worker's epoll loop calls.
//
// A worker accepts connections and hands each one to its `service`, which returns a
// `session` for it. The loop owns nothing protocol-specific: it waits on epoll, calls the
// session when its socket is ready (edge-triggered), when its deadline passes, and when
// the worker starts retiring, and destroys the session when a call returns false (the worker
// closes the socket after that). The built-in HTTP server is one such service.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/log.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/transport.hpp>
#include <preforkd/unique_fd.hpp>

namespace preforkd {

namespace detail {
struct context_access;  // the worker's side of worker_context (src/worker/context_access.hpp)
struct session_access;  // the worker's side of session
class signal_handler;   // how the worker's loop acts on a signal
}  // namespace detail

// One accepted connection, before a session takes it.
struct accepted_connection {
    // The connection's byte stream, owned by the worker: valid until the session is
    // destroyed; the worker closes it after that. Register io->fd() for readiness only.
    transport* io = nullptr;
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    uint32_t listener = 0;  // index into config.server.listen
    // The TLS version after the handshake ("TLSv1.3", a static string), nullptr on a plain
    // listener: for the access log, so protocols need not know the TLS library.
    const char* tls_version = nullptr;
};

// What the worker offers its service: the clock, the logs, the scoreboard, the counters.
// Cheap inline accessors: the service calls some of them on every request.
class worker_context {
  public:
    worker_context(const config& cfg, logger& log, const scoreboard& board, uint32_t slot,
                   int access_fd) noexcept
        : cfg_(&cfg), log_(&log), access_fd_(access_fd), board_(&board), slot_(slot) {}

    // CLOCK_MONOTONIC ms, read once per loop turn.
    int64_t now_ms() const noexcept { return now_ms_; }
    const config& cfg() const noexcept { return *cfg_; }
    logger& log() const noexcept { return *log_; }
    // The access log's fd (O_APPEND), or -1 when `log.access = "off"`.
    int access_log_fd() const noexcept { return access_fd_; }
    const scoreboard& board() const noexcept { return *board_; }
    uint32_t slot_index() const noexcept { return slot_; }
    // True once the worker has begun retiring (stop accepting, finish, leave).
    bool retiring() const noexcept { return retiring_; }

    // One request answered, `bytes` sent for it: counted in this worker's scoreboard slot.
    void count_request(uint64_t bytes) noexcept {
        auto& s = board_->slot(slot_);
        scoreboard_slot::bump(s.requests, 1);
        scoreboard_slot::bump(s.bytes, bytes);
        ++requests_;
    }
    uint64_t requests() const noexcept { return requests_; }
    // One response sent with `status` (100..599; anything else is not counted): counted by
    // status class in this worker's scoreboard slot. Once per response, next to count_request.
    void count_response(int status) noexcept {
        const int c = traffic_counters::status_class(status);
        if (c >= 0)
            scoreboard_slot::bump(board_->slot(slot_).responses[static_cast<unsigned>(c)], 1);
    }

  private:
    // The worker's loop (and tests driving a session by hand) set the clock, the retiring
    // flag, the access log and the signal handling through it.
    friend struct detail::context_access;

    int64_t now_ms_ = 0;
    const config* cfg_ = nullptr;
    logger* log_ = nullptr;
    int access_fd_ = -1;
    const scoreboard* board_ = nullptr;
    uint32_t slot_ = 0;
    bool retiring_ = false;
    uint64_t requests_ = 0;
    uint64_t max_requests_ = 0;  // workers.max_requests with this worker's jitter; 0 = never
    detail::signal_handler* signal_handler_ = nullptr;
};

// The protocol side of one connection. Every call is noexcept and returns whether the
// connection stays open; false makes the loop destroy the session, then close its socket.
class session {
  public:
    virtual ~session() = default;

    // The socket is ready: `events` holds EPOLLIN/EPOLLOUT/EPOLLRDHUP/EPOLLHUP/EPOLLERR.
    // Edge-triggered: read and write until EAGAIN, or readiness will not be reported again.
    virtual bool on_io(uint32_t events) noexcept = 0;
    // The deadline set with set_deadline() has passed.
    virtual bool on_deadline() noexcept = 0;
    // The worker is retiring: finish what is in flight, answer the next request with
    // `Connection: close` (or the protocol's equivalent), close when idle. Called once.
    virtual bool on_retire() noexcept = 0;

    // Monotonic ms at which on_deadline() is due; 0 = none.
    int64_t deadline_ms() const noexcept { return deadline_ms_; }
    // True while a request is between its first byte and its last response byte. A worker
    // whose sessions are all idle, with room for another connection, counts as idle on the
    // scoreboard and for spare scaling (it can serve a new client at once).
    bool busy() const noexcept { return busy_; }

  protected:
    void set_deadline(int64_t at_ms) noexcept { deadline_ms_ = at_ms; }
    void set_busy(bool b) noexcept { busy_ = b; }

  private:
    friend struct detail::session_access;

    int64_t deadline_ms_ = 0;
    bool busy_ = false;
};

// One per worker process, made after fork and privilege drop.
class service {
  public:
    virtual ~service() = default;
    // A connection was accepted. Return its session, or nullptr to close it at once.
    virtual std::unique_ptr<session> open(accepted_connection&& conn) noexcept = 0;
    // About once a second (caches, housekeeping).
    virtual void on_tick() noexcept {}
    // USR1: the worker has reopened its error and access logs.
    virtual void on_reopen_logs() noexcept {}
    // How long a new connection may take to send what comes before the protocol's first
    // byte (a `proxy` listener's PROXY header). Asked once, at the worker's start: the
    // engine reads no protocol's settings, so the protocol says it (HTTP: header_timeout).
    virtual int64_t first_bytes_timeout_ms() const noexcept { return 10'000; }
};

}  // namespace preforkd
