// The blocking protocol interface: one plain function per connection.
//
//     int main(int argc, char** argv) {
//         preforkd::application app = preforkd::blocking_application([](preforkd::connection& c) {
//             while (auto line = c.read_line()) {
//                 if (!c.write_all(*line + "\n")) return;
//             }
//         });
//         app.name = "echo";
//         return preforkd::run(argc, argv, app);
//     }
//
// The handler runs in a worker for each accepted connection and holds that worker until it
// returns, so a worker serves one connection at a time, like Apache's prefork:
// blocking_application() sets application::max_connections = 1, which overrides
// workers.max_connections, and the supervisor grows the pool within the [workers] bounds as
// workers get busy. The supervisor's whole job (binding, pre-forking, respawn, SIGHUP reload,
// TTIN/TTOU, spares, scoreboard, logs, daemon mode, -t/-s) needs no code from the handler.
//
// While a handler runs, its worker's event loop does not; the connection's helpers stand in:
// - Heartbeat: they never wait longer than a second without beating it, so a handler waiting
//   for its client is not taken for a hung worker. A handler that computes for longer than
//   workers.heartbeat_timeout without calling a helper (or heartbeat()) is, and is replaced.
// - TERM (fast stop): the helper waiting returns io_errc::stopping at once, and so does every
//   later call; the handler should return. (Computing, it has until the supervisor's KILL.)
// - QUIT (graceful stop, reload, a spare retired): the worker stops accepting at once and
//   retiring() turns true. The handler finishes the exchange in hand and returns; helpers
//   keep working until workers.graceful_timeout has passed, then fail with io_errc::timeout.
// - USR1: the logs are reopened at once.
// (A handler computing without calling a helper notices them at its next call; retiring()
// looks at the signals itself, so asking it is enough to learn of a QUIT.)
//
// A handler that crashes (abort(), SIGSEGV) takes its worker with it: that one connection is
// closed, the supervisor replaces the worker, and other connections, held by other workers,
// never notice. An exception escaping the handler is logged and closes its connection only.
#pragma once

#include <fmt/format.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <preforkd/application.hpp>
#include <preforkd/config.hpp>
#include <preforkd/log.hpp>
#include <preforkd/result.hpp>
#include <preforkd/service.hpp>
#include <preforkd/transport.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace preforkd {

// Why a connection helper failed, besides system errors (ECONNRESET, EPIPE ...), which come
// as std::system_category codes. Compare with `r.err().code == io_errc::eof`.
enum class io_errc {
    eof = 1,        // the peer closed its side before the bytes asked for came
    timeout,        // the call's timeout, the connection's deadline or the graceful timeout passed
    stopping,       // the worker was told to stop (TERM): return from the handler
    line_too_long,  // read_line() found no newline within its limit
};

const std::error_category& io_category() noexcept;
inline std::error_code make_error_code(io_errc e) noexcept {
    return {static_cast<int>(e), io_category()};
}

}  // namespace preforkd

template <>
struct std::is_error_code_enum<preforkd::io_errc> : std::true_type {};

namespace preforkd {

namespace detail {
class signal_watch;
}

// One accepted connection, as a blocking handler sees it. The socket stays non-blocking; the
// helpers wait with poll() and honour two limits, whichever comes first: each call's timeout
// (set_timeout) and the connection's deadline (set_deadline).
class connection {
  public:
    // Made by the engine for each connection (`signals` may be null: no signal is watched).
    connection(accepted_connection&& conn, worker_context& ctx,
               detail::signal_watch* signals) noexcept;
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // The socket, for socket options and the like; read and write with the helpers (they go
    // through the connection's transport).
    int fd() const noexcept { return io_->fd(); }
    const sockaddr_storage& peer() const noexcept { return peer_; }
    socklen_t peer_length() const noexcept { return peer_len_; }
    // "127.0.0.1:40312", "[::1]:40312", or "unix" for a unix-domain client.
    std::string peer_address() const;
    // Which config.server.listen entry accepted it.
    uint32_t listener() const noexcept { return listener_; }

    worker_context& context() const noexcept { return *ctx_; }
    const config& cfg() const noexcept { return ctx_->cfg(); }
    logger& log() const noexcept { return ctx_->log(); }
    // The application's settings of this worker's generation (see settings_table()).
    template <class T>
    const T& settings() const {
        return cfg().app_settings<T>();
    }

    // Each later call must complete within `t`, else it fails with io_errc::timeout; 0 = no
    // limit. The default is 60 s (Apache's Timeout): a client that goes silent frees its
    // worker.
    void set_timeout(milliseconds t) noexcept { timeout_ = t; }
    milliseconds timeout() const noexcept { return timeout_; }
    // The whole connection must be over within `t` from now: calls fail with
    // io_errc::timeout after that. 0 = no deadline (the default).
    void set_deadline(milliseconds t) noexcept;

    // Up to `len` bytes (buffered ones first), at least one; io_errc::eof once the peer has
    // closed its side and everything is read.
    result<size_t> read_some(void* buf, size_t len) noexcept;
    // The next line, without its "\n" or "\r\n". A last line without a newline is returned
    // when the peer closes; then io_errc::eof. io_errc::line_too_long when `max_bytes` bytes
    // hold no newline (they stay buffered).
    result<std::string> read_line(size_t max_bytes = 8192);
    // Exactly `len` bytes; io_errc::eof if the peer closes first.
    result<std::string> read_exact(size_t len);

    // All of `data`, waiting for the peer to take it as needed.
    result<void> write_all(std::string_view data) noexcept;
    // write_all() of fmt::format(f, args...).
    template <class... Args>
    result<void> print(fmt::format_string<Args...> f, Args&&... args) {
        return write_all(fmt::vformat(f, fmt::make_format_args(args...)));
    }

    // TERM came: every helper now fails with io_errc::stopping. Return from the handler.
    bool stopping() const noexcept;
    // The worker is retiring (QUIT, reload, a spare retired, workers.max_requests reached
    // with this connection's count_request()): finish the exchange in hand, then return
    // rather than wait for another request. A QUIT counts from its arrival (one read of the
    // worker's signalfd per call).
    bool retiring() const noexcept;
    // What every helper does while it waits: beat the worker's heartbeat and notice signals.
    // For a handler that computes for long between calls. False once stopping().
    bool heartbeat() noexcept;

    // One request served: counted in the scoreboard (status, workers.max_requests) with the
    // bytes written since the previous count. A handler that never calls it makes its
    // connection count as one request.
    void count_request() noexcept;
    // Called by the engine when the handler has returned: counts what was not counted.
    void finish() noexcept;

  private:
    // Monotonic ms by which the current call must end (0 = never), from its start.
    int64_t call_limit() const noexcept;
    // Waits until the socket reports `events` (or an error or hang-up), noticing signals and
    // beating the heartbeat; fails at `limit`, or when the worker stops.
    result<void> wait(short events, int64_t limit) noexcept;
    // Reads what the socket has into the buffer, waiting for at least one byte.
    result<void> fill(int64_t limit) noexcept;
    void tick(int64_t now) noexcept;
    size_t buffered() const noexcept { return in_.size() - in_pos_; }
    void consume(size_t n) noexcept;

    transport* io_;  // owned by the worker, valid while the handler runs
    sockaddr_storage peer_{};
    socklen_t peer_len_ = 0;
    uint32_t listener_ = 0;
    worker_context* ctx_;
    detail::signal_watch* signals_;
    std::string in_;  // bytes read from the socket; [in_pos_, end) not yet consumed
    size_t in_pos_ = 0;
    bool eof_ = false;  // the peer has closed its side
    milliseconds timeout_{60'000};
    int64_t deadline_ms_ = 0;
    int64_t last_signal_check_ms_ = 0;
    uint64_t bytes_uncounted_ = 0;
    uint64_t requests_ = 0;
};

// What a blocking application runs for each connection.
using connection_handler = std::function<void(connection&)>;

// An application whose workers run `handler` for each connection, one connection per worker
// (max_connections = 1). Set name, version, default_config and schema before run().
application blocking_application(connection_handler handler);

}  // namespace preforkd
