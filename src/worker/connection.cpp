// connection: the blocking handler's socket helpers (see <preforkd/blocking.hpp>).
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <preforkd/blocking.hpp>
#include <preforkd/clock.hpp>
#include <preforkd/detail/address.hpp>
#include <preforkd/detail/syscall.hpp>

#include "worker/context_access.hpp"
#include "worker/signal_watch.hpp"

namespace preforkd {
namespace {

// A waiting helper wakes at least this often to beat the heartbeat (the loop beats once a
// second too; workers.heartbeat_timeout is at least 1 s).
constexpr int64_t beat_interval_ms = 500;
// A helper that never has to wait (a client flooding the worker) still looks at the signals
// this often.
constexpr int64_t signal_check_interval_ms = 100;
constexpr size_t read_chunk = 16384;

class io_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "preforkd.io"; }
    std::string message(int e) const override {
        switch (static_cast<io_errc>(e)) {
            case io_errc::eof:
                return "connection closed by the peer";
            case io_errc::timeout:
                return "timed out";
            case io_errc::stopping:
                return "the worker is stopping";
            case io_errc::line_too_long:
                return "line too long";
        }
        return "unknown connection error";
    }
};

error io_error(io_errc e) { return error(make_error_code(e), make_error_code(e).message()); }

// min of two limits where 0 means none.
int64_t earliest(int64_t a, int64_t b) noexcept {
    if (a == 0) return b;
    if (b == 0) return a;
    return std::min(a, b);
}

}  // namespace

const std::error_category& io_category() noexcept {
    static const io_category_impl category;
    return category;
}

connection::connection(accepted_connection&& conn, worker_context& ctx,
                       detail::signal_watch* signals) noexcept
    : io_(conn.io),
      peer_(conn.peer),
      peer_len_(conn.peer_len),
      listener_(conn.listener),
      ctx_(&ctx),
      signals_(signals),
      last_signal_check_ms_(monotonic_ms()) {}

connection::~connection() = default;

std::string connection::peer_address() const { return detail::format_address(peer_); }

void connection::set_deadline(milliseconds t) noexcept {
    deadline_ms_ = t.count() > 0 ? monotonic_ms() + t.count() : 0;
}

bool connection::stopping() const noexcept { return signals_ && signals_->stopping(); }

bool connection::retiring() const noexcept {
    // A QUIT that arrived since the last helper call counts at once: the watch is read here
    // (one non-blocking read of its signalfd) rather than at the next call or heartbeat.
    if (signals_) signals_->drain(monotonic_ms());
    return ctx_->retiring() || (signals_ && signals_->retiring()) ||
           detail::context_access::max_requests_reached(*ctx_);
}

int64_t connection::call_limit() const noexcept {
    int64_t limit = timeout_.count() > 0 ? monotonic_ms() + timeout_.count() : 0;
    limit = earliest(limit, deadline_ms_);
    if (signals_) limit = earliest(limit, signals_->retire_deadline_ms());
    return limit;
}

void connection::tick(int64_t now) noexcept {
    detail::context_access::set_now_ms(*ctx_, now);
    // The slot is this worker's own; the loop writes it the same way between events.
    ctx_->board().slot(ctx_->slot_index()).heartbeat_ms.store(now, std::memory_order_relaxed);
    if (signals_ && now - last_signal_check_ms_ >= signal_check_interval_ms) {
        last_signal_check_ms_ = now;
        signals_->drain(now);
    }
}

bool connection::heartbeat() noexcept {
    int64_t now = monotonic_ms();
    last_signal_check_ms_ = 0;  // look at the signals now
    tick(now);
    return !stopping();
}

result<void> connection::wait(short events, int64_t limit) noexcept {
    for (;;) {
        int64_t now = monotonic_ms();
        tick(now);
        if (stopping()) return io_error(io_errc::stopping);
        // A retire that began during this call brings its deadline forward.
        if (signals_) limit = earliest(limit, signals_->retire_deadline_ms());
        if (limit != 0 && now >= limit) return io_error(io_errc::timeout);
        int64_t ms = limit == 0 ? beat_interval_ms : std::min(limit - now, beat_interval_ms);
        pollfd p[2] = {{io_->fd(), events, 0}, {signals_ ? signals_->fd() : -1, POLLIN, 0}};
        // A transport holding bytes it has already taken from the socket (TLS) is ready
        // whatever the socket says.
        const int timeout_ms = (events & POLLIN) && io_->pending() > 0 ? 0 : static_cast<int>(ms);
        int n = detail::retry_eintr([&] { return ::poll(p, 2, timeout_ms); });
        if (n < 0) return error::from_errno(errno, "poll");
        if ((events & POLLIN) && io_->pending() > 0) return {};
        if (p[1].revents & POLLIN) {
            signals_->drain(monotonic_ms());
            last_signal_check_ms_ = now;
        }
        // Ready, or an error or hang-up that the next read or write reports.
        if (p[0].revents != 0 && !stopping()) return {};
    }
}

result<void> connection::fill(int64_t limit) noexcept {
    if (eof_) return io_error(io_errc::eof);
    // Only a partial line or record is left before in_pos_'s end: drop what was consumed,
    // so a client sending many lines at once does not grow the buffer.
    in_.erase(0, in_pos_);
    in_pos_ = 0;
    for (;;) {
        tick(monotonic_ms());
        if (stopping()) return io_error(io_errc::stopping);
        size_t old = in_.size();
        try {
            in_.resize(old + read_chunk);
        } catch (...) {
            return error(std::make_error_code(std::errc::not_enough_memory), "out of memory");
        }
        ssize_t n = io_->read(in_.data() + old, read_chunk);  // EINTR retried inside
        int err = errno;
        in_.resize(n > 0 ? old + static_cast<size_t>(n) : old);
        if (n > 0) return {};
        if (n == 0) {
            eof_ = true;
            return io_error(io_errc::eof);
        }
        if (err != EAGAIN && err != EWOULDBLOCK) return error::from_errno(err, "recv");
        if (auto w = wait(POLLIN | POLLRDHUP, limit); !w) return w;
    }
}

void connection::consume(size_t n) noexcept {
    in_pos_ += n;
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    }
}

result<size_t> connection::read_some(void* buf, size_t len) noexcept {
    if (stopping()) return io_error(io_errc::stopping);
    if (len == 0) return size_t{0};
    if (buffered() == 0) {
        if (auto r = fill(call_limit()); !r) return std::move(r).err();
    }
    size_t n = std::min(len, buffered());
    std::memcpy(buf, in_.data() + in_pos_, n);
    consume(n);
    return n;
}

result<std::string> connection::read_line(size_t max_bytes) {
    if (stopping()) return io_error(io_errc::stopping);
    int64_t limit = call_limit();
    size_t searched = 0;  // bytes already known to hold no newline
    for (;;) {
        std::string_view have(in_.data() + in_pos_, buffered());
        size_t nl = have.find('\n', searched);
        if (nl != std::string_view::npos && nl < max_bytes) {
            size_t len = nl;
            if (len > 0 && have[len - 1] == '\r') --len;
            std::string line(have.substr(0, len));
            consume(nl + 1);
            return line;
        }
        if (have.size() >= max_bytes) return io_error(io_errc::line_too_long);
        searched = have.size();
        if (auto r = fill(limit); !r) {
            // The peer closed after a last line without a newline: that line, then EOF.
            if (r.err().code == io_errc::eof && buffered() > 0) {
                std::string line(in_.data() + in_pos_, buffered());
                consume(buffered());
                return line;
            }
            return std::move(r).err();
        }
    }
}

result<std::string> connection::read_exact(size_t len) {
    if (stopping()) return io_error(io_errc::stopping);
    int64_t limit = call_limit();
    while (buffered() < len) {
        if (auto r = fill(limit); !r) return std::move(r).err();
    }
    std::string out(in_.data() + in_pos_, len);
    consume(len);
    return out;
}

result<void> connection::write_all(std::string_view data) noexcept {
    if (stopping()) return io_error(io_errc::stopping);
    int64_t limit = call_limit();
    size_t off = 0;
    while (off < data.size()) {
        tick(monotonic_ms());
        if (stopping()) return io_error(io_errc::stopping);
        // A peer that went away is an EPIPE here, never a SIGPIPE (see transport::write).
        ssize_t n = io_->write(data.data() + off, data.size() - off);
        if (n > 0) {
            off += static_cast<size_t>(n);
            bytes_uncounted_ += static_cast<uint64_t>(n);
            continue;
        }
        int err = errno;
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
            if (auto w = wait(POLLOUT, limit); !w) return w;
            continue;
        }
        return error::from_errno(n < 0 ? err : EPIPE, "send");
    }
    return {};
}

void connection::count_request() noexcept {
    ctx_->count_request(bytes_uncounted_);
    bytes_uncounted_ = 0;
    ++requests_;
}

void connection::finish() noexcept {
    if (requests_ == 0) {
        count_request();
    } else if (bytes_uncounted_ > 0) {
        auto& slot = ctx_->board().slot(ctx_->slot_index());
        scoreboard_slot::bump(slot.bytes, bytes_uncounted_);
        bytes_uncounted_ = 0;
    }
}

}  // namespace preforkd
