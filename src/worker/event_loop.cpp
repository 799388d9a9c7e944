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
#include <new>
#include <preforkd/clock.hpp>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/exit_code.hpp>
#include <string>

#include "sys/signals.hpp"
#include "worker/accept_policy.hpp"
#include "worker/context_access.hpp"
#include "worker/max_requests.hpp"
#include "worker/signal_watch.hpp"

namespace preforkd::detail {
namespace {

constexpr int max_events = 256;
constexpr uint32_t connection_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

}  // namespace

event_loop::event_loop(worker_start& ws, worker_context& ctx, logger& log, service& svc,
                       const sys_calls& sys) noexcept
    : ws_(ws),
      ctx_(ctx),
      log_(log),
      svc_(svc),
      sys_(sys),
      slot_(ws.board->slot(ws.slot)),
      max_connections_(static_cast<size_t>(std::max(1, ws.cfg->workers.max_connections))),
      max_requests_(
          jittered_max_requests(ws.cfg->workers.max_requests, static_cast<uint64_t>(::getpid()))) {
    // The blocking connection's retiring() reads it: a handler learns of the limit at once.
    context_access::set_max_requests(ctx_, max_requests_);
}

event_loop::~event_loop() {
    context_access::set_signal_handler(ctx_, nullptr);
    for (connection* c : live_) delete c;
    for (connection* c : free_) delete c;
    for (connection* c : closed_) delete c;
}

// The worker cannot serve: the reason goes to the log and to the slot (see run_worker).
bool event_loop::fail_setup(const std::string& why) noexcept {
    log_.crit("{}", why);
    slot_.set_exit_reason(why);
    return false;
}

bool event_loop::setup() noexcept {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) {
        return fail_setup(fmt::format("epoll_create1: {}", std::strerror(errno)));
    }
    // Blocked since the fork (run_worker): whatever arrived meanwhile is read from here.
    auto sigs = sys::open_signalfd(worker_signals());
    if (!sigs) {
        return fail_setup(sigs.err().message);
    }
    signals_fd_ = std::move(*sigs);
    context_access::set_signal_handler(ctx_, this);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &signals_watch_;
    if (sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signals_fd_.get(), &ev) != 0) {
        return fail_setup(fmt::format("epoll_ctl(signalfd): {}", std::strerror(errno)));
    }
    try {
        for (size_t i = 0; i < ws_.listeners.size(); ++i) {
            auto l = std::make_unique<listener_watch>();
            l->k = kind::listener;
            l->fd.reset(ws_.listeners[i]);  // the worker's inherited copy is now ours to close
            l->index = static_cast<uint32_t>(i);
            l->tls = i < ws_.cfg->server.listen.size() && ws_.cfg->server.listen[i].tls &&
                     ws_.tls_ctx != nullptr;
            l->proxy = i < ws_.cfg->server.listen.size() && ws_.cfg->server.listen[i].proxy;
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
        limit_connections_to_descriptors();
        // Sized once: accepting and closing never allocate (records are recycled too).
        live_.reserve(max_connections_);
        timers_.reserve(max_connections_);
    } catch (const std::bad_alloc&) {
        return fail_setup("out of memory setting up the event loop");
    }
    log_tls_start();
    first_bytes_timeout_ms_ = std::max<int64_t>(1, svc_.first_bytes_timeout_ms());
    arm_listeners(true);
    return listening_ || listeners_.empty();
}

void event_loop::arm_listeners(bool on) noexcept {
    if (on == listening_ || (on && (retiring_ || stop_))) return;
    for (auto& l : listeners_) {
        if (!l->fd) continue;
        if (on)
            add_listener(*l);
        else
            sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l->fd.get(), nullptr);
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
    if (sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, l.fd.get(), &ev) != 0)
        log_.error("epoll_ctl(ADD listener {}): {}", l.index, std::strerror(errno));
    l.turn_start = -1;
}

void event_loop::requeue_listener(listener_watch& l) noexcept {
    // The ADD puts this worker last among those the listener wakes (see accept_policy.hpp). A
    // connection that arrives in between is not lost: the ADD reports a ready listener.
    sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.fd.get(), nullptr);
    add_listener(l);
}

int event_loop::run() noexcept {
    if (!setup()) return static_cast<int>(exit_code::fatal);
    context_access::set_now_ms(ctx_, monotonic_ms());
    heartbeat();
    publish_counts();

    epoll_event events[max_events];
    while (!stop_) {
        int timeout = static_cast<int>(wait_timeout_ms());
        int n = sys_.epoll_wait(epoll_.get(), events, max_events, timeout);
        if (n < 0) {
            // Not retried with the same timeout: a signal (a SIGCONT after a stop) means time
            // has passed, so read the clock and look at the timers and the heartbeat first.
            if (errno != EINTR) {
                log_.crit("epoll_wait: {}", std::strerror(errno));
                return static_cast<int>(exit_code::failure);
            }
            n = 0;
        }
        int64_t now = monotonic_ms();
        context_access::set_now_ms(ctx_, now);
        bool signals = false;
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
                    signals = true;
                    break;
            }
        }
        // The signals last: a QUIT read before a listener event of the same batch would close
        // the listener with the connection that woke this worker still queued, and with
        // EPOLLEXCLUSIVE no other worker was woken for it. Accepted first, it is served (as a
        // retiring worker serves: one answer, then close).
        if (signals) on_signals();
        free_.insert(free_.end(), closed_.begin(), closed_.end());
        closed_.clear();
        if (now >= timers_.next()) run_timers();
        if (now >= next_beat_) heartbeat();
        if (accept_resume_ != 0 && now >= accept_resume_) {
            accept_resume_ = 0;
            resume_on_close_ = false;
            if (!full()) arm_listeners(true);
        }
        if (max_requests_ != 0) check_max_requests();
        if (retiring_) {
            if (!listeners_released_) release_listeners();
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
    int64_t until = std::min({next_beat_, timers_.next(), graceful_deadline_});
    if (accept_resume_ != 0) until = std::min(until, accept_resume_);
    return std::clamp<int64_t>(until - now, 0, heartbeat_interval_ms);
}

void event_loop::on_listener(listener_watch& l) noexcept {
    // Checked before every accept, not once per wake-up: a blocking handler runs inside
    // accept_one() and may have met a TERM or a QUIT (off the listeners) or served the last
    // of workers.max_requests, and a session may have filled the worker.
    const accept_policy policy = accept_policy_for(l.tls);
    for (int i = 0; i < policy.batch; ++i) {
        if (!listening_) return;  // also false once stopping or retiring
        if (!accept_one(l)) break;
        if (max_requests_ != 0) check_max_requests();
    }
    if (l.turn_start >= 0 && ctx_.now_ms() - l.turn_start >= policy.turn_ms && listening_ && l.fd)
        requeue_listener(l);
}

bool event_loop::accept_one(listener_watch& l) noexcept {
    accepted_connection ac;
    ac.peer_len = sizeof(ac.peer);
    int fd = sys_.accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&ac.peer), &ac.peer_len,
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
                pause_accept(err);
                return false;
            default:
                log_.error("accept: {}", std::strerror(err));
                return false;
        }
    }
    connection* c;
    if (free_.empty()) {
        c = new (std::nothrow) connection();
        if (!c) {
            ::close(fd);  // not retried: Linux frees the descriptor even on EINTR
            pause_accept(ENOMEM);
            return false;
        }
    } else {
        c = free_.back();
        free_.pop_back();
    }
    c->k = kind::connection;
    ac.listener = l.index;
    if (l.turn_start < 0) l.turn_start = ctx_.now_ms();
    scoreboard_slot::bump(slot_.accepted, 1);
    // Counted against max_connections from the accept: a PROXY header or a handshake holds a
    // descriptor and memory as a session does, and a blocking handler may hold the worker
    // for long (the pool must see it busy meanwhile).
    c->ac = ac;
    c->busy = false;
    c->watched = false;
    c->timer_at = 0;
    c->pos = static_cast<uint32_t>(live_.size());
    live_.push_back(c);
    publish_counts();
    if (l.tls) {
        // The socket and its SSL; the handshake waits for the PROXY header, if any.
        c->tls.reset(new (std::nothrow) tls::tls_transport(
            unique_fd(fd), static_cast<SSL_CTX*>(ws_.tls_ctx), &tls_counters_));
        if (!c->tls || !c->tls->valid()) {
            if (!c->tls) ::close(fd);
            close_connection(*c);
            return true;
        }
        c->ac.io = c->tls.get();
    } else {
        c->io.reset(unique_fd(fd));
        c->ac.io = &c->io;
    }
    // The stages, each opening the next: the PROXY header (clear text, beneath any TLS), the
    // TLS handshake, the session.
    if (l.proxy)
        start_proxy(*c);
    else if (c->tls)
        start_tls(*c);
    else
        open_session(*c);
    // Full: off the listeners at once. Registered, this worker would be the one the next
    // connection wakes (EPOLLEXCLUSIVE), and it could only leave it queued while a peer
    // with room sleeps on.
    if (full()) arm_listeners(false);
    return true;
}

// The one way a session opens, whichever stages came before (none, the PROXY header, the
// TLS handshake, or both).
void event_loop::open_session(connection& c) noexcept {
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
    // A first turn at once: the client has usually sent its request with the handshake (or
    // behind the PROXY header, or it sits decrypted in the SSL), so it is read and answered
    // now, and a plain connection that ends with its first answer (Connection: close) never
    // costs an epoll_ctl or a wake-up. A socket with nothing to read yet answers EAGAIN, and
    // the ADD below reports whatever arrives after that (edge-triggered epoll checks
    // readiness when a file is added).
    bool keep = !retiring_ || c.s->on_retire();
    if (keep) keep = c.s->on_io(EPOLLIN | EPOLLOUT);
    if (keep) keep = watch_connection(c);
    settle(c, keep);
}

bool event_loop::watch_connection(connection& c) noexcept {
    if (c.watched) return true;
    epoll_event ev{};
    ev.events = connection_events;
    ev.data.ptr = &c;
    if (sys_.epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.ac_fd(), &ev) != 0) {
        log_.error("epoll_ctl(ADD connection): {}", std::strerror(errno));
        return false;
    }
    c.watched = true;
    return true;
}

void event_loop::on_connection(connection& c, uint32_t events) noexcept {
    if (c.s)
        settle(c, c.s->on_io(events));
    else if (c.hs)
        step_handshake(c, false);
    else if (c.in_proxy)
        on_proxy_event(c, events);
    else if (c.lingering)
        linger_plain(c);
}

void event_loop::settle(connection& c, bool keep) noexcept {
    if (!keep) {
        close_connection(c);
        return;
    }
    // Lazy (see timer_heap.hpp): a deadline moved later keeps its earlier place.
    const int64_t d = c.s->deadline_ms();
    if (d != 0 && (c.timer_at == 0 || d < c.timer_at)) timers_.set(c, d);
    const bool busy = c.s->busy();
    if (busy != c.busy) {
        c.busy = busy;
        busy ? ++busy_ : --busy_;
        publish_counts();
    }
}

void event_loop::close_connection(connection& c) noexcept {
    timers_.remove(c);
    if (c.busy) {
        c.busy = false;
        --busy_;
    }
    c.s.reset();
    c.hs.reset();
    c.in_proxy = false;
    c.lingering = false;
    c.lingered = 0;
    c.io.reset();  // closed after the session is gone; closing also leaves the epoll set
    c.tls.reset();
    connection* last = live_.back();
    live_[c.pos] = last;
    last->pos = c.pos;
    live_.pop_back();
    // A record that never joined the epoll set is reusable at once; others wait for the end
    // of the batch, which may still hold an event for them.
    (c.watched ? closed_ : free_).push_back(&c);
    c.watched = false;
    publish_counts();
    if (resume_on_close_) {
        accept_resume_ = 0;
        resume_on_close_ = false;
    }
    if (!listening_ && !retiring_ && accept_resume_ == 0 && !full()) arm_listeners(true);
}

// The scoreboard's view of this worker: busy while a session has a request in hand
// (session::busy()) or while it has no room for another connection; idle otherwise, even
// with idle keep-alive connections open, since it can still take new ones (a spare).
void event_loop::publish_counts() noexcept {
    slot_.connections.store(static_cast<uint32_t>(live_.size()), std::memory_order_relaxed);
    if (!retiring_)
        slot_.set_state(busy_ == 0 && !full() ? worker_state::idle : worker_state::busy);
}

void event_loop::run_timers() noexcept {
    const int64_t now = ctx_.now_ms();
    while (connection* c = timers_.top()) {
        if (c->timer_at > now) break;
        if (c->hs) {
            timers_.remove(*c);
            step_handshake(*c, true);  // handshake_timeout: rejected
            continue;
        }
        if (c->lingering) {  // the plain-HTTP 400's linger is over
            close_connection(*c);
            continue;
        }
        if (c->in_proxy) {  // the PROXY stage's deadline: the header did not come
            timers_.remove(*c);
            reject_proxy(*c, "timed out");
            continue;
        }
        const int64_t d = c->s->deadline_ms();
        if (d == 0) {
            timers_.remove(*c);
            continue;
        }
        if (d > now) {
            timers_.set(*c, d);  // moved later meanwhile: the lazy entry catches up
            continue;
        }
        timers_.remove(*c);
        const bool keep = c->s->on_deadline();
        if (keep) {
            const int64_t after = c->s->deadline_ms();
            if (after != 0 && after <= now) {
                // Kept, with its deadline still due: called again at once, it would spin the
                // worker. The deadline is dropped; the session's next call may set another.
                session_access::clear_deadline(*c->s);
                if (!deadline_spin_logged_) {
                    log_.debug(
                        "a session's on_deadline() kept its connection without moving "
                        "its deadline: deadline dropped");
                    deadline_spin_logged_ = true;
                }
            }
        }
        settle(*c, keep);
    }
}

}  // namespace preforkd::detail
