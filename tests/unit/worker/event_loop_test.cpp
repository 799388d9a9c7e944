// The worker's event loop in this process, its syscalls behind a fault-injecting table
// (detail::sys_calls): EINTR from epoll_wait, EINTR, ECONNABORTED, EAGAIN, EMFILE and ENOMEM
// from accept4, a QUIT in the batch of a listener event, a worker filling up on the last
// accept of a batch, a session that keeps a due deadline, and idle sessions on the scoreboard.
//
// The test is the loop's only thread: it acts (connects, sends, raises signals) from a hook
// that runs before each epoll_wait, so every step happens at a known point of the loop.
#include "worker/event_loop.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <functional>
#include <memory>
#include <preforkd/clock.hpp>
#include <preforkd/config.hpp>
#include <preforkd/exit_code.hpp>
#include <preforkd/log.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/service.hpp>
#include <string>
#include <vector>

#include "core/worker_start.hpp"
#include "worker/sys_calls.hpp"

namespace preforkd {
namespace {

// What the fake syscalls do, and what they saw. One at a time (the loop has one thread).
struct fault_script {
    std::deque<int> accept_errors;         // errno for the next accept4 calls; 0 = the real call
    int wait_eintr = 0;                    // epoll_wait fails with EINTR this many times first
    std::function<void(int)> before_wait;  // called with the epoll_wait count (1, 2, ...)
    bool signals_first = false;            // put the signalfd's event first in each batch
    int waits = 0;
    int accepted = 0;  // real accept4 successes
    int accept_calls = 0;
    int listener_fd = -1;
    bool listener_registered = false;
    int deletes_of_listener = 0;
    void* signals_ptr = nullptr;  // data.ptr of the first ADD (the signalfd, see setup())
};
fault_script* script = nullptr;

int fake_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    ++script->accept_calls;
    if (!script->accept_errors.empty()) {
        int e = script->accept_errors.front();
        script->accept_errors.pop_front();
        if (e != 0) {
            errno = e;
            return -1;
        }
    }
    int r = ::accept4(fd, addr, len, flags);
    if (r >= 0) ++script->accepted;
    return r;
}

int fake_epoll_wait(int epfd, epoll_event* events, int max, int timeout_ms) {
    ++script->waits;
    if (script->before_wait) script->before_wait(script->waits);
    if (script->wait_eintr > 0) {
        --script->wait_eintr;
        errno = EINTR;
        return -1;
    }
    int n = ::epoll_wait(epfd, events, max, timeout_ms);
    if (script->signals_first && n > 1) {
        for (int i = 1; i < n; ++i)
            if (events[i].data.ptr == script->signals_ptr) std::swap(events[0], events[i]);
    }
    return n;
}

int fake_epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    if (op == EPOLL_CTL_ADD && script->signals_ptr == nullptr) script->signals_ptr = ev->data.ptr;
    if (fd == script->listener_fd) {
        if (op == EPOLL_CTL_ADD) script->listener_registered = true;
        if (op == EPOLL_CTL_DEL) {
            script->listener_registered = false;
            ++script->deletes_of_listener;
        }
    }
    return ::epoll_ctl(epfd, op, fd, ev);
}

constexpr detail::sys_calls faulty{fake_accept4, fake_epoll_wait, fake_epoll_ctl};

// Sessions of a line protocol: "ok\n" for each line; a line "busy" makes the session busy,
// "idle" idle; with `stuck_deadline`, each session sets a deadline that on_deadline() keeps
// without moving it.
struct test_service final : service {
    explicit test_service(worker_context& c) : ctx(c) {}
    std::unique_ptr<session> open(accepted_connection&& conn) noexcept override;
    worker_context& ctx;
    bool stuck_deadline = false;
    int deadline_calls = 0;
};

class test_session final : public session {
  public:
    test_session(test_service& svc, transport& io) : svc_(svc), io_(io) {
        if (svc.stuck_deadline) set_deadline(svc.ctx.now_ms() + 1);
    }
    bool on_io(uint32_t) noexcept override {
        char buf[256];
        for (;;) {
            ssize_t n = io_.read(buf, sizeof buf);
            if (n == 0) return false;
            if (n < 0) return errno == EAGAIN;
            for (ssize_t i = 0; i < n; ++i) {
                if (buf[i] != '\n') {
                    line_.push_back(buf[i]);
                    continue;
                }
                if (line_ == "busy") set_busy(true);
                if (line_ == "idle") set_busy(false);
                line_.clear();
                if (io_.write("ok\n", 3) != 3) return false;
                svc_.ctx.count_request(3);
            }
        }
    }
    bool on_deadline() noexcept override {
        ++svc_.deadline_calls;
        return true;  // and the deadline stays where it was
    }
    bool on_retire() noexcept override { return true; }

  private:
    test_service& svc_;
    transport& io_;
    std::string line_;
};

std::unique_ptr<session> test_service::open(accepted_connection&& conn) noexcept {
    return std::make_unique<test_session>(*this, *conn.io);
}

// A client: blocking socket, reads bounded.
struct client {
    int fd = -1;
    explicit client(uint16_t port) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port = htons(port);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    }
    ~client() { close(); }
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    void send(const std::string& s) const {
        EXPECT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
    }
    // What has arrived, without waiting.
    std::string received() {
        char buf[1024];
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 0) <= 0) break;
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) break;
            got.append(buf, static_cast<size_t>(n));
        }
        return got;
    }
    std::string got;
};

// A worker's surroundings in this process: config, log (to a file the test reads), one
// scoreboard slot, a listener on loopback, the signals blocked (the loop's signalfd reads them).
class event_loop_test : public ::testing::Test {
  protected:
    void SetUp() override {
        char path[] = "/tmp/preforkd-loop-XXXXXX";
        int fd = ::mkstemp(path);
        ASSERT_GE(fd, 0);
        ::close(fd);
        log_path_ = path;
        ASSERT_TRUE(log_.open(log_path_));
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
        ASSERT_EQ(::listen(listener_, 64), 0);
        socklen_t len = sizeof sin;
        ASSERT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&sin), &len), 0);
        port_ = ntohs(sin.sin_port);
        cfg_.workers.max_connections = 512;
        cfg_.workers.graceful_timeout = milliseconds(2000);
        script_.listener_fd = -2;  // known once the loop owns its copy
        script = &script_;
    }
    void TearDown() override {
        script = nullptr;
        ::close(listener_);
        ::unlink(log_path_.c_str());
    }

    // Runs the loop until it ends; the hook ends it with TERM after `max_waits` turns anyway.
    int run(std::function<void(int)> step, int max_waits = 200) {
        int copy = ::dup(listener_);
        script_.listener_fd = copy;
        script_.before_wait = [&, step = std::move(step), max_waits](int n) {
            if (n > max_waits) {
                ::raise(SIGTERM);
                return;
            }
            step(n);
        };
        worker_start ws;
        ws.cfg = &cfg_;
        ws.listeners = {copy};
        ws.board = &board_;
        ws.slot = 0;
        ws.supervisor = ::getppid();
        ws.error_log_target = log_path_;
        worker_context ctx(cfg_, log_, board_, 0, -1);
        svc_ = std::make_unique<test_service>(ctx);
        svc_->stuck_deadline = stuck_deadline_;
        detail::event_loop loop(ws, ctx, log_, *svc_, faulty);
        int status = loop.run();
        deadline_calls_ = svc_->deadline_calls;
        svc_.reset();
        return status;
    }
    std::string log_text() const {
        std::string out;
        FILE* f = std::fopen(log_path_.c_str(), "r");
        if (!f) return out;
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
        std::fclose(f);
        return out;
    }
    worker_state state() const { return board_.slot(0).get_state(); }

    config cfg_;
    logger log_{"worker", log_level::debug};
    scoreboard board_ = scoreboard::create(1).value();
    std::string log_path_;
    int listener_ = -1;
    uint16_t port_ = 0;
    fault_script script_;
    std::unique_ptr<test_service> svc_;
    bool stuck_deadline_ = false;
    int deadline_calls_ = 0;
};

TEST_F(event_loop_test, survives_eintr_from_epoll_wait_and_accept4) {
    script_.wait_eintr = 3;
    script_.accept_errors = {EINTR, ECONNABORTED, EAGAIN};
    std::unique_ptr<client> c;
    int status = run([&](int n) {
        if (n == 1) {
            c = std::make_unique<client>(port_);
            c->send("hello\n");
        }
        if (c && c->received() == "ok\n") ::raise(SIGTERM);
    });
    EXPECT_EQ(status, 0);
    EXPECT_EQ(c->got, "ok\n");
    EXPECT_EQ(script_.accepted, 1);
    EXPECT_EQ(log_text().find("[error]"), std::string::npos) << log_text();
}

TEST_F(event_loop_test, emfile_pauses_accept_and_a_closing_connection_resumes_it) {
    std::unique_ptr<client> a, b;
    int64_t closed_at = 0, served_at = 0;
    int status = run([&](int n) {
        if (n == 1) {
            a = std::make_unique<client>(port_);
            a->send("a\n");
        }
        if (a && a->received() == "ok\n" && !b) {
            // The next accept4 fails: out of descriptors, with b queued.
            script_.accept_errors = {EMFILE};
            b = std::make_unique<client>(port_);
            b->send("b\n");
        }
        if (b && closed_at == 0 && !script_.listener_registered &&
            script_.deletes_of_listener > 0) {
            a->close();  // a descriptor comes free: accept resumes now, not after the pause
            closed_at = monotonic_ms();
        }
        if (b && served_at == 0 && b->received() == "ok\n") {
            served_at = monotonic_ms();
            ::raise(SIGTERM);
        }
    });
    EXPECT_EQ(status, 0);
    ASSERT_NE(closed_at, 0) << "accept never paused\n" << log_text();
    ASSERT_NE(served_at, 0) << "the queued client was never served\n" << log_text();
    EXPECT_LT(served_at - closed_at, 200) << "resumed by the pause, not by the close";
    const std::string log = log_text();
    EXPECT_NE(log.find("accept: Too many open files (1 connections open); pausing accept"),
              std::string::npos)
        << log;
}

// Issue 18.2: a worker whose descriptor limit is taken before its first connection (a reload
// to a small workers.rlimit_nofile) can never accept. Pausing would leave a worker that looks
// healthy and serves nobody: it exits fatal with the reason, so that the supervisor abandons
// the reload (or fails the start) and says why.
TEST_F(event_loop_test, emfile_with_no_connection_ever_accepted_is_a_fatal_exit) {
    script_.accept_errors = {EMFILE};
    std::unique_ptr<client> c;
    int status = run([&](int n) {
        if (n == 1) {
            c = std::make_unique<client>(port_);
            c->send("x\n");
        }
    });
    EXPECT_EQ(status, static_cast<int>(exit_code::fatal)) << log_text();
    EXPECT_NE(std::string(board_.slot(0).exit_reason).find("descriptor limit"), std::string::npos)
        << board_.slot(0).exit_reason;
}

TEST_F(event_loop_test, enomem_pauses_accept_for_a_while_then_resumes) {
    script_.accept_errors = {ENOMEM};
    std::unique_ptr<client> c;
    int64_t sent_at = 0, served_at = 0;
    int status = run([&](int n) {
        if (n == 1) {
            c = std::make_unique<client>(port_);
            c->send("x\n");
            sent_at = monotonic_ms();
        }
        if (c && served_at == 0 && c->received() == "ok\n") {
            served_at = monotonic_ms();
            ::raise(SIGTERM);
        }
    });
    EXPECT_EQ(status, 0);
    ASSERT_NE(served_at, 0) << log_text();
    EXPECT_GE(served_at - sent_at, 200);  // the 250 ms pause, not a spin
    EXPECT_LE(script_.accept_calls, 3);
    EXPECT_NE(log_text().find("pausing accept"), std::string::npos) << log_text();
}

// Issue 19 item 1: QUIT and a listener event in one batch. Read first, the QUIT would close
// the listener while the connection that woke this worker (and no other: EPOLLEXCLUSIVE)
// stays queued. It is accepted and served first.
TEST_F(event_loop_test, a_quit_in_the_batch_of_a_listener_event_does_not_drop_the_wake_up) {
    script_.signals_first = true;
    std::unique_ptr<client> c;
    int status = run([&](int n) {
        if (n == 1) {
            c = std::make_unique<client>(port_);
            c->send("x\n");
            ::raise(SIGQUIT);  // pending with the connection before the first epoll_wait
        }
        if (c && c->received() == "ok\n") c->close();  // the retiring worker then leaves
    });
    EXPECT_EQ(status, 0);
    EXPECT_EQ(script_.accepted, 1) << log_text();
    EXPECT_EQ(c->got, "ok\n");
    EXPECT_EQ(state(), worker_state::retiring);
}

// Issue 19 item 1: a worker full after the last accept of a batch (16) is off the listener
// before it waits again, so the next connection wakes a worker with room.
TEST_F(event_loop_test, a_worker_full_on_the_last_accept_of_a_batch_leaves_the_listener) {
    cfg_.workers.max_connections = 16;
    std::vector<std::unique_ptr<client>> clients;
    bool registered_when_full = true;
    int status = run([&](int n) {
        if (n == 1) {
            for (int i = 0; i < 16; ++i) clients.push_back(std::make_unique<client>(port_));
            return;
        }
        if (script_.accepted == 16) {
            registered_when_full = script_.listener_registered;
            ::raise(SIGTERM);
        }
    });
    EXPECT_EQ(status, 0);
    EXPECT_EQ(script_.accepted, 16);
    EXPECT_FALSE(registered_when_full);
    EXPECT_EQ(board_.slot(0).connections.load(), 16u);
}

// Issue 19 item 6: on_deadline() answering true with its deadline still due must not spin.
TEST_F(event_loop_test, a_session_keeping_a_due_deadline_does_not_spin_the_worker) {
    stuck_deadline_ = true;
    std::unique_ptr<client> c;
    int64_t start = 0;
    int status = run(
        [&](int n) {
            if (n == 1) {
                c = std::make_unique<client>(port_);
                start = monotonic_ms();
            }
            if (start != 0 && monotonic_ms() - start >= 300) ::raise(SIGTERM);
        },
        100000);
    EXPECT_EQ(status, 0);
    EXPECT_GE(deadline_calls_, 1);
    EXPECT_LE(deadline_calls_, 2);
    EXPECT_LE(script_.waits, 20) << "the loop spun";
    EXPECT_NE(log_text().find("without moving its deadline"), std::string::npos) << log_text();
}

// Issue 19 item 7: session::busy() decides the worker's state. With idle sessions only (and
// room for more), the worker is a spare: idle on the scoreboard.
TEST_F(event_loop_test, a_worker_whose_sessions_are_idle_counts_as_idle) {
    std::unique_ptr<client> c;
    int stage = 0;
    worker_state with_idle = worker_state::empty, with_busy = worker_state::empty,
                 after_idle = worker_state::empty;
    int status = run([&](int n) {
        if (n == 1) {
            c = std::make_unique<client>(port_);
            c->send("hello\n");
            stage = 1;
        } else if (stage == 1 && c->received() == "ok\n") {
            with_idle = state();
            c->send("busy\n");
            stage = 2;
        } else if (stage == 2 && c->received() == "ok\nok\n") {
            with_busy = state();
            c->send("idle\n");
            stage = 3;
        } else if (stage == 3 && c->received() == "ok\nok\nok\n") {
            after_idle = state();
            ::raise(SIGTERM);
        }
    });
    EXPECT_EQ(status, 0);
    EXPECT_EQ(with_idle, worker_state::idle);
    EXPECT_EQ(with_busy, worker_state::busy);
    EXPECT_EQ(after_idle, worker_state::idle);
}

// ... but a worker without room for another connection is busy, idle sessions or not
// (max_connections = 1 and a held keep-alive connection: it cannot serve a spare's part).
TEST_F(event_loop_test, a_full_worker_counts_as_busy) {
    cfg_.workers.max_connections = 1;
    std::unique_ptr<client> c;
    worker_state full_state = worker_state::empty;
    int status = run([&](int n) {
        if (n == 1) {
            c = std::make_unique<client>(port_);
            c->send("hello\n");
        } else if (c->received() == "ok\n") {
            full_state = state();
            ::raise(SIGTERM);
        }
    });
    EXPECT_EQ(status, 0);
    EXPECT_EQ(full_state, worker_state::busy);
}

}  // namespace
}  // namespace preforkd
