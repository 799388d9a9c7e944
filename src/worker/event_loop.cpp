#include "worker/event_loop.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include <preforkd/clock.hpp>
#include <preforkd/exit_code.hpp>

#include "sys/signals.hpp"
#include "worker/max_requests.hpp"
#include "worker/signal_watch.hpp"

namespace preforkd::detail {
namespace {

// Connections taken per wake-up of one listener: enough to drain a burst cheaply, few
// enough that one worker does not swallow a whole backlog while its peers sleep.
constexpr int accept_batch = 16;
// EPOLLEXCLUSIVE wakes the first worker, in the order their epoll sets registered the
// listener, that is waiting: an idle worker early in that order takes nearly every
// connection (measured: 5162/3417/1957/1070 over 4 workers). So the workers take turns: a
// worker keeps its place for this long after its first accept, then registers the listener
// again, which moves it to the end of the order. Within a turn one worker takes what it
// can (warm caches, and a burst of keep-alive connections lands on one worker, which on a
// small machine serves them with fewer wake-ups and a shorter tail than two would); over a
// second every waiting worker has had many turns. Two epoll_ctl calls a turn.
// (Turns of 16 accepts instead spread every burst; measured with tests/bench, 2 CPUs:
// keep-alive p99 1.4-2.3 ms against 0.4-0.6 ms, for the same accept spread in scenario c.)
constexpr int64_t accept_turn_ms = 10;
constexpr int max_events = 256;
constexpr int64_t heartbeat_interval_ms = 1000;
constexpr int64_t accept_pause_ms = 250;  // after EMFILE and friends
constexpr uint32_t connection_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

}  // namespace

event_loop::event_loop(worker_start& ws, worker_context& ctx, logger& log, service& svc) noexcept
    : ws_(ws),
      ctx_(ctx),
      log_(log),
      svc_(svc),
      slot_(ws.board->slot(ws.slot)),
      max_connections_(static_cast<size_t>(std::max(1, ws.cfg->workers.max_connections))),
      max_requests_(jittered_max_requests(ws.cfg->workers.max_requests,
                                          static_cast<uint64_t>(::getpid()))) {}

event_loop::~event_loop() {
    ctx_.set_signal_handler(nullptr);
    for (connection* c : live_) delete c;
    for (connection* c : free_) delete c;
    for (connection* c : closed_) delete c;
}

bool event_loop::setup() noexcept {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) {
        log_.crit("epoll_create1: {}", std::strerror(errno));
        return false;
    }
    // Blocked since the fork (run_worker): whatever arrived meanwhile is read from here.
    auto sigs = sys::open_signalfd(worker_signals());
    if (!sigs) {
        log_.crit("{}", sigs.err().message);
        return false;
    }
    signals_fd_ = std::move(*sigs);
    ctx_.set_signal_handler(this);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &signals_watch_;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signals_fd_.get(), &ev) != 0) {
        log_.crit("epoll_ctl(signalfd): {}", std::strerror(errno));
        return false;
    }
    for (size_t i = 0; i < ws_.listeners.size(); ++i) {
        auto l = std::make_unique<listener_watch>();
        l->k = kind::listener;
        l->fd.reset(ws_.listeners[i]);  // the worker's inherited copy is now ours to close
        l->index = static_cast<uint32_t>(i);
        // Sessions write whole responses, so Nagle could only hold back the last segment
        // of each. Linux copies the option from a listening socket to every socket it
        // accepts: set here once, it saves a setsockopt per connection. (Not TCP, e.g. a
        // unix socket: refused, and nothing to do.)
        int one = 1;
        (void)::setsockopt(l->fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        listeners_.push_back(std::move(l));
    }
    ws_.listeners.clear();
    // The inherited access log is ours from now on (fd 2 means stderr: not ours to close).
    if (ws_.access_log_fd > 2) access_log_.reset(ws_.access_log_fd);
    arm_listeners(true);
    return listening_ || listeners_.empty();
}

void event_loop::arm_listeners(bool on) noexcept {
    if (on == listening_ || (on && retiring_)) return;
    for (auto& l : listeners_) {
        if (on)
            add_listener(*l);
        else
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l->fd.get(), nullptr);
    }
    listening_ = on;
}

void event_loop::add_listener(listener_watch& l) noexcept {
    epoll_event ev{};
    // EPOLLEXCLUSIVE: a new connection wakes one waiting worker, not the whole pool (no
    // thundering herd). It cannot be changed with EPOLL_CTL_MOD, hence pausing by DEL and
    // resuming by ADD.
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.ptr = &l;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, l.fd.get(), &ev) != 0)
        log_.error("epoll_ctl(ADD listener {}): {}", l.index, std::strerror(errno));
    l.turn_start = -1;
}

void event_loop::requeue_listener(listener_watch& l) noexcept {
    // The ADD puts this worker last among those the listener wakes (see accept_turn_ms). A
    // connection that arrives in between is not lost: the ADD reports a ready listener.
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
    add_listener(l);
}

int event_loop::run() noexcept {
    if (!setup()) return static_cast<int>(exit_code::fatal);
    ctx_.set_now_ms(monotonic_ms());
    heartbeat();
    slot_.set_state(worker_state::idle);

    epoll_event events[max_events];
    while (!stop_) {
        int timeout = static_cast<int>(wait_timeout_ms());
        int n = ::epoll_wait(epoll_.get(), events, max_events, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            log_.crit("epoll_wait: {}", std::strerror(errno));
            return static_cast<int>(exit_code::failure);
        }
        int64_t now = monotonic_ms();
        ctx_.set_now_ms(now);
        for (int i = 0; i < n; ++i) {
            // Records stay valid for the whole batch (see closed_ and begin_retire), so an
            // event for something closed earlier in the batch finds it empty, not freed.
            auto* w = static_cast<watch*>(events[i].data.ptr);
            switch (w->k) {
                case kind::connection:
                    on_connection(*static_cast<connection*>(w), events[i].events);
                    break;
                case kind::listener:
                    on_listener(*static_cast<listener_watch*>(w));
                    break;
                case kind::signals:
                    on_signals();
                    break;
            }
        }
        free_.insert(free_.end(), closed_.begin(), closed_.end());
        closed_.clear();
        if (now >= next_scan_) scan_deadlines();
        if (now >= next_beat_) heartbeat();
        if (accept_resume_ != 0 && now >= accept_resume_) {
            accept_resume_ = 0;
            resume_on_close_ = false;
            if (live_.size() < max_connections_) arm_listeners(true);
        }
        if (!retiring_ && max_requests_ != 0 && ctx_.requests() >= max_requests_) {
            begin_retire("reached workers.max_requests");
            // "Look at the scoreboard now": the supervisor forks the replacement at once
            // instead of at its next tick. SIGURG is ignored by default, so should the pid
            // have been recycled, nobody else is hurt.
            if (::getppid() == ws_.supervisor) ::kill(ws_.supervisor, SIGURG);
        }
        if (retiring_) {
            if (live_.empty()) break;
            if (now >= graceful_deadline_) {
                log_.warn("graceful timeout: closing {} connection(s) still open", live_.size());
                break;
            }
        }
    }
    return exit_status_;
}

int64_t event_loop::wait_timeout_ms() const noexcept {
    int64_t now = ctx_.now_ms();
    int64_t until = std::min({next_beat_, next_scan_, graceful_deadline_});
    if (accept_resume_ != 0) until = std::min(until, accept_resume_);
    return std::clamp<int64_t>(until - now, 0, heartbeat_interval_ms);
}

void event_loop::on_listener(listener_watch& l) noexcept {
    if (!l.fd) return;  // closed by begin_retire earlier in this batch
    for (int i = 0; i < accept_batch; ++i) {
        if (live_.size() >= max_connections_) {
            // Full: leave the rest of the backlog to workers with room.
            arm_listeners(false);
            return;
        }
        if (!accept_one(l)) break;
    }
    if (l.turn_start >= 0 && ctx_.now_ms() - l.turn_start >= accept_turn_ms && listening_ && l.fd)
        requeue_listener(l);
}

bool event_loop::accept_one(listener_watch& l) noexcept {
    accepted_connection ac;
    ac.peer_len = sizeof(ac.peer);
    int fd = ::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&ac.peer), &ac.peer_len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        switch (err) {
            case EAGAIN:
                return false;  // another worker won the race, or the queue is empty: normal
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case EPERM:  // a firewall rule refused it
                return true;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                // Out of descriptors or memory: accepting again at once would spin.
                // Step back, let connections close, and say so once a minute at most.
                if (ctx_.now_ms() - last_accept_error_log_ >= 60'000 ||
                    last_accept_error_log_ == 0) {
                    log_.error("accept: {} ({} connections open); pausing accept",
                               std::strerror(err), live_.size());
                    last_accept_error_log_ = ctx_.now_ms();
                }
                arm_listeners(false);
                accept_resume_ = ctx_.now_ms() + accept_pause_ms;
                // Out of our own descriptors, a connection that closes frees one: accept
                // again then, not only after the pause (queued clients would wait it out).
                resume_on_close_ = err == EMFILE;
                return false;
            default:
                log_.error("accept: {}", std::strerror(err));
                return false;
        }
    }
    unique_fd conn_fd(fd);
    ac.listener = l.index;
    if (l.turn_start < 0) l.turn_start = ctx_.now_ms();
    scoreboard_slot::bump(slot_.accepted, 1);

    connection* c;
    if (free_.empty()) {
        c = new (std::nothrow) connection();
        if (!c) return true;  // the socket goes away
    } else {
        c = free_.back();
        free_.pop_back();
    }
    c->io.reset(std::move(conn_fd));
    ac.io = &c->io;
    std::unique_ptr<session> s = svc_.open(std::move(ac));
    if (!s) {
        c->io.reset();
        free_.push_back(c);
        return true;
    }
    c->k = kind::connection;
    c->s = std::move(s);
    c->counted_busy = false;
    // Counted before the session runs: a blocking handler may hold the worker for long, and
    // the pool must see it busy meanwhile.
    c->pos = static_cast<uint32_t>(live_.size());
    live_.push_back(c);
    publish_counts();

    // A first turn before the socket joins the epoll set: the client has usually sent its
    // request with the handshake, so it is read and answered now, and a connection that
    // ends with its first answer (Connection: close) never costs an epoll_ctl or a wake-up.
    // A socket with nothing to read yet answers EAGAIN, and the ADD below reports whatever
    // arrives after that (edge-triggered epoll checks readiness when a file is added).
    bool keep = !retiring_ || c->s->on_retire();
    if (keep) keep = c->s->on_io(EPOLLIN | EPOLLOUT);
    if (!keep) {
        close_connection(*c);  // the session has said all it had to say
        return true;
    }
    epoll_event ev{};
    ev.events = connection_events;
    ev.data.ptr = c;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_.error("epoll_ctl(ADD connection): {}", std::strerror(errno));
        close_connection(*c);
        return true;
    }
    settle(*c, true);
    return true;
}

void event_loop::on_connection(connection& c, uint32_t events) noexcept {
    if (c.s) settle(c, c.s->on_io(events));
}

void event_loop::settle(connection& c, bool keep) noexcept {
    if (!keep) {
        close_connection(c);
        return;
    }
    int64_t d = c.s->deadline_ms();
    if (d != 0 && d < next_scan_) next_scan_ = d;
}

void event_loop::close_connection(connection& c) noexcept {
    c.s.reset();
    c.io.reset();  // closes the socket, which also removes it from the epoll set
    connection* last = live_.back();
    live_[c.pos] = last;
    last->pos = c.pos;
    live_.pop_back();
    closed_.push_back(&c);
    publish_counts();
    if (resume_on_close_) {
        accept_resume_ = 0;
        resume_on_close_ = false;
    }
    if (!listening_ && !retiring_ && accept_resume_ == 0 && live_.size() < max_connections_)
        arm_listeners(true);
}

void event_loop::publish_counts() noexcept {
    slot_.connections.store(static_cast<uint32_t>(live_.size()), std::memory_order_relaxed);
    if (!retiring_) slot_.set_state(live_.empty() ? worker_state::idle : worker_state::busy);
}

void event_loop::scan_deadlines() noexcept {
    int64_t now = ctx_.now_ms();
    next_scan_ = INT64_MAX;
    // Walk by index from the end: closing swaps the last record into the hole, which the
    // walk has already visited.
    for (size_t i = live_.size(); i-- > 0;) {
        connection& c = *live_[i];
        int64_t d = c.s->deadline_ms();
        if (d != 0 && d <= now) settle(c, c.s->on_deadline());
        else if (d != 0 && d < next_scan_) next_scan_ = d;
    }
}

void event_loop::heartbeat() noexcept {
    int64_t now = ctx_.now_ms();
    slot_.heartbeat_ms.store(now, std::memory_order_relaxed);
    next_beat_ = now + heartbeat_interval_ms;
    if (!retiring_ && ::getppid() != ws_.supervisor) begin_retire("the supervisor is gone");
    svc_.on_tick();
}

void event_loop::on_signals() noexcept {
    while (auto info = sys::read_signal(signals_fd_.get()))
        on_signal(static_cast<int>(info->ssi_signo));
}

// Also called from inside a session's on_io: a blocking handler's connection reads the
// worker's signals while the loop waits for it. begin_retire() then calls on_retire() of that
// very session, which only answers true (it is serving), so nothing is closed under it.
void event_loop::on_signal(int signo) noexcept {
    switch (signo) {
        case SIGTERM:
        case SIGINT:
            stop_ = true;
            break;
        case SIGQUIT:
            begin_retire("told to retire");
            break;
        case SIGUSR1:
            reopen_logs();
            break;
        default:
            break;
    }
}

void event_loop::begin_retire(const char* why) noexcept {
    if (retiring_) return;
    log_.debug("retiring: {} ({} connection(s) open)", why, live_.size());
    arm_listeners(false);
    retiring_ = true;
    ctx_.set_retiring();
    slot_.set_state(worker_state::retiring);
    // Close our copies of the listening sockets at once: when the last process holding a
    // socket lets go (graceful stop), the kernel refuses new connections instead of
    // queueing them for nobody. On reload the supervisor and the new generation still
    // hold them, so nothing is refused.
    // (The watch objects stay: an event of the current batch may still point at them.)
    for (auto& l : listeners_) l->fd.reset();
    graceful_deadline_ = ctx_.now_ms() + ws_.cfg->workers.graceful_timeout.count();
    for (size_t i = live_.size(); i-- > 0;) {
        connection& c = *live_[i];
        settle(c, c.s->on_retire());
    }
}

void event_loop::reopen_logs() noexcept {
    if (ws_.error_log_target != "stderr") {
        if (auto r = log_.open(ws_.error_log_target); !r) log_.error("USR1: {}", r.err().message);
    }
    if (!ws_.access_log_target.empty() && ws_.access_log_target != "stderr" &&
        ws_.access_log_target != "off") {
        auto fd = open_log_file(ws_.access_log_target);
        if (fd) {
            access_log_ = std::move(*fd);
            ctx_.set_access_log_fd(access_log_.get());
        } else {
            log_.error("USR1: {}", fd.err().message);
        }
    }
    svc_.on_reopen_logs();
    log_.debug("reopened the logs");
}

}  // namespace preforkd::detail
