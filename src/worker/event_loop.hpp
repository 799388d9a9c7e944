// The worker's epoll loop: shared listeners (EPOLLEXCLUSIVE: one connection wakes one
// worker), its own connections (edge-triggered), its signals (signalfd) and a heartbeat.
// It knows nothing of any protocol: sessions do the talking.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <preforkd/log.hpp>
#include <preforkd/service.hpp>
#include <preforkd/transport.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <vector>

#include "core/worker_start.hpp"
#include "tls/tls_accept.hpp"
#include "tls/tls_transport.hpp"
#include "worker/context_access.hpp"
#include "worker/sys_calls.hpp"
#include "worker/timer_heap.hpp"

namespace preforkd::detail {

class event_loop final : private signal_handler {
  public:
    // `sys`: the syscalls it makes (tests pass a table that injects faults).
    event_loop(worker_start& ws, worker_context& ctx, logger& log, service& svc,
               const sys_calls& sys = sys_calls::real()) noexcept;
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    // Runs until told to stop, or until retired with no connection left. Returns the exit status.
    int run() noexcept;

    // workers.max_connections as this worker applies it: lowered to what its descriptor
    // limit can hold (known once run() has set up).
    size_t max_connections() const noexcept { return max_connections_; }

  private:
    static constexpr int64_t heartbeat_interval_ms = 1000;

    enum class kind : uint8_t { listener, signals, connection };
    struct watch {
        kind k;
    };
    struct listener_watch : watch {
        unique_fd fd;
        uint32_t index = 0;
        bool tls = false;  // server.listen[index] has the tls flag (this generation's config)
        int64_t turn_start = -1;  // first accept since this worker (re-)registered it; -1: none
        bool proxy = false;       // connections start with a PROXY protocol header
    };
    // Recycled, never freed while the worker runs: no allocation per connection.
    struct connection : watch {
        plain_transport io;  // the socket: closed after the session is destroyed
        std::unique_ptr<session> s;
        uint32_t pos = 0;        // index in live_
        int64_t timer_at = 0;    // key in timers_ (0: not in it); may be earlier than the
        uint32_t timer_pos = 0;  // session's deadline (see timer_heap.hpp)
        bool busy = false;       // s->busy() as last counted in busy_
        // On a tls listener: the socket and its SSL (io stays empty), and until the session
        // opens, the handshake and what the session will be opened with.
        std::unique_ptr<tls::tls_transport> tls;
        std::optional<tls::tls_accept> hs;
        // What the session will be opened with, from the accept until it opens (the PROXY
        // stage replaces the peer).
        accepted_connection ac;
        bool watched = false;   // in the epoll set
        bool in_proxy = false;  // the PROXY stage (proxy listeners only): waiting for the header
        // After the plain-HTTP 400 on a tls listener: input is dropped until the client
        // closes or the timer ends it (then no session, handshake or PROXY stage).
        bool lingering = false;
        size_t lingered = 0;
        // The socket, whichever transport owns it.
        int ac_fd() const noexcept { return tls ? tls->fd() : io.fd(); }
    };

    bool setup() noexcept;
    bool fail_setup(const std::string& why) noexcept;
    void limit_connections_to_descriptors() noexcept;
    int64_t wait_timeout_ms() const noexcept;
    void on_listener(listener_watch& l) noexcept;
    bool accept_one(listener_watch& l) noexcept;  // false: stop accepting for now
    // event_loop_tls.cpp: a tls listener's connection, from accept to its session.
    void start_tls(connection& c) noexcept;
    void step_handshake(connection& c, bool expired) noexcept;
    void log_tls_start() noexcept;
    void publish_tls() noexcept;
    void linger_plain(connection& c) noexcept;
    void pause_accept(int err) noexcept;
    void on_connection(connection& c, uint32_t events) noexcept;
    // The PROXY stage (event_loop_proxy.cpp).
    void start_proxy(connection& c) noexcept;
    void on_proxy_event(connection& c, uint32_t events) noexcept;
    int read_proxy_header(connection& c, uint32_t events) noexcept;  // 1 done, 0 wait, -1 bad
    void reject_proxy(connection& c, const char* why) noexcept;
    void after_proxy(connection& c) noexcept;
    // After the stages (or at once on a plain listener): the session opens and runs a turn.
    void open_session(connection& c) noexcept;
    bool watch_connection(connection& c) noexcept;  // into the epoll set, once
    void on_signals() noexcept;
    void on_signal(int signo) noexcept override;     // also called by a blocking session
    void settle(connection& c, bool keep) noexcept;  // after any session call
    void close_connection(connection& c) noexcept;
    void run_timers() noexcept;
    void heartbeat() noexcept;
    void arm_listeners(bool on) noexcept;
    void add_listener(listener_watch& l) noexcept;
    void requeue_listener(listener_watch& l) noexcept;
    bool full() const noexcept { return live_.size() >= max_connections_; }
    void check_max_requests() noexcept;
    // take_queue: close the listeners at the end of this turn, after taking their queue.
    void begin_retire(const char* why, bool take_queue = false) noexcept;
    void release_listeners() noexcept;
    void reopen_logs() noexcept;
    void publish_counts() noexcept;

    worker_start& ws_;
    worker_context& ctx_;
    logger& log_;
    service& svc_;
    const sys_calls& sys_;
    scoreboard_slot& slot_;
    unique_fd epoll_;
    unique_fd signals_fd_;
    watch signals_watch_{kind::signals};
    std::vector<std::unique_ptr<listener_watch>> listeners_;
    std::vector<connection*> live_;
    std::vector<connection*> free_;  // recycled records: no allocation per connection
    // Closed during the current batch of events: a later event of the same batch may still
    // point at them, so they are recycled only after the batch.
    std::vector<connection*> closed_;
    timer_heap<connection> timers_;
    unique_fd access_log_;  // reopened copy after USR1 (else the inherited fd)
    tls::tls_counters tls_counters_;
    tls::tls_counters tls_published_;
    int64_t handshake_timeout_ms_ = 10'000;
    int64_t first_bytes_timeout_ms_ = 10'000;  // the PROXY header's bound: the service's

    size_t max_connections_;
    uint64_t max_requests_;   // with this worker's jitter; 0 = never
    size_t busy_ = 0;         // live sessions whose busy() is true
    bool listening_ = false;  // listeners are in the epoll set
    bool retiring_ = false;
    bool listeners_released_ = false;
    bool take_queue_ = false;       // see release_listeners
    bool signals_in_loop_ = false;  // on_signal called by the loop, not inside a session
    bool stop_ = false;
    bool deadline_spin_logged_ = false;
    int exit_status_ = 0;
    int64_t next_beat_ = 0;
    int64_t accept_resume_ = 0;     // after EMFILE: accept again at this time
    bool resume_on_close_ = false;  // ... or as soon as one of our connections frees an fd
    int64_t graceful_deadline_ = INT64_MAX;
    int64_t last_accept_error_log_ = 0;
};

}  // namespace preforkd::detail
