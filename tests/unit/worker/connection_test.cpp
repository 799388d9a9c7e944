// connection (the blocking handler's helpers) over a socketpair: lines, EOF, limits, time
// limits, writes to a slow reader, the scoreboard, and the worker's signals (in a child
// process, whose signal mask the test runner does not share).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <preforkd/blocking.hpp>
#include <preforkd/clock.hpp>
#include <string>
#include <thread>

#include "worker/context_access.hpp"
#include "worker/signal_watch.hpp"

namespace preforkd {
namespace {

using namespace std::chrono_literals;

// A worker's surroundings: a config, a logger, a one-slot scoreboard.
struct worker_env {
    config cfg;
    logger log{"worker", log_level::crit};
    scoreboard board = scoreboard::create(1).value();
    worker_context ctx{cfg, log, board, 0, -1};
};

// A connected pair: `server` (non-blocking, as accept4 gives it) for the connection, `peer`
// (blocking) for the test.
struct pair {
    unique_fd server;
    unique_fd peer;
    pair() {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        server.reset(sv[0]);
        peer.reset(sv[1]);
        ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    }
    plain_transport io;  // the worker's, as the event loop keeps one per connection
    accepted_connection take() {
        io.reset(std::move(server));
        accepted_connection ac;
        ac.io = &io;
        ac.peer.ss_family = AF_UNIX;
        ac.peer_len = sizeof(sa_family_t);
        return ac;
    }
    void send(const std::string& s) {
        ASSERT_EQ(::write(peer.get(), s.data(), s.size()), static_cast<ssize_t>(s.size()));
    }
    void close_write() { ::shutdown(peer.get(), SHUT_WR); }
    std::string read_all() {
        std::string out;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(peer.get(), buf, sizeof buf)) > 0)
            out.append(buf, static_cast<size_t>(n));
        return out;
    }
};

int64_t elapsed_ms(int64_t since) { return monotonic_ms() - since; }

TEST(connection, reads_lines_without_their_terminators) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    p.send("one\ntwo\r\n\nthree");
    p.close_write();
    EXPECT_EQ(*c.read_line(), "one");
    EXPECT_EQ(*c.read_line(), "two");
    EXPECT_EQ(*c.read_line(), "");
    // The last line has no newline: it comes at EOF, then EOF itself.
    EXPECT_EQ(*c.read_line(), "three");
    auto eof = c.read_line();
    ASSERT_FALSE(eof);
    EXPECT_EQ(eof.err().code, io_errc::eof);
    EXPECT_EQ(c.peer_address(), "unix");
}

TEST(connection, a_line_longer_than_the_limit_is_an_error_and_stays_buffered) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    p.send("0123456789abcdef\nok\n");
    auto r = c.read_line(8);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, io_errc::line_too_long);
    EXPECT_EQ(*c.read_line(100), "0123456789abcdef");
    EXPECT_EQ(*c.read_line(3), "ok");  // "ok\n" is three bytes: within the limit
}

TEST(connection, read_exact_and_read_some_share_the_buffer) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    p.send("head\nBODY1234rest");
    EXPECT_EQ(*c.read_line(), "head");
    EXPECT_EQ(*c.read_exact(8), "BODY1234");
    char buf[16];
    auto n = c.read_some(buf, sizeof buf);
    ASSERT_TRUE(n);
    EXPECT_EQ(std::string(buf, *n), "rest");
    p.send("ab");
    p.close_write();
    auto short_read = c.read_exact(3);
    ASSERT_FALSE(short_read);
    EXPECT_EQ(short_read.err().code, io_errc::eof);
}

TEST(connection, a_call_times_out_after_its_timeout) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    c.set_timeout(150ms);
    int64_t start = monotonic_ms();
    auto r = c.read_line();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, io_errc::timeout);
    EXPECT_GE(elapsed_ms(start), 140);
    EXPECT_LT(elapsed_ms(start), 2000);
    // The timeout is per call: data arriving in time is read.
    p.send("late\n");
    EXPECT_EQ(*c.read_line(), "late");
}

TEST(connection, the_deadline_bounds_the_whole_connection) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    c.set_timeout(0ms);  // no per-call limit
    c.set_deadline(300ms);
    std::atomic<bool> done{false};
    std::thread feeder([&] {
        // A line every 50 ms: each call is quick, the connection as a whole is not.
        for (int i = 0; i < 40 && !done; ++i) {
            if (::write(p.peer.get(), "x\n", 2) != 2) return;
            std::this_thread::sleep_for(50ms);
        }
    });
    int64_t start = monotonic_ms();
    int lines = 0;
    result<std::string> r = std::string();
    while ((r = c.read_line())) ++lines;
    int64_t took = elapsed_ms(start);
    done = true;
    feeder.join();
    EXPECT_EQ(r.err().code, io_errc::timeout);
    EXPECT_GE(lines, 3);
    EXPECT_GE(took, 290);
    EXPECT_LT(took, 1500);
}

TEST(connection, writes_everything_to_a_slow_reader_and_counts_it) {
    worker_env env;
    pair p;
    auto c = std::make_unique<connection>(p.take(), env.ctx, nullptr);
    std::string big(4 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    std::string got;
    std::thread reader([&] {
        std::this_thread::sleep_for(100ms);  // the socket buffer fills: write_all must wait
        got = p.read_all();
    });
    ASSERT_TRUE(c->write_all(big));
    c->count_request();
    ASSERT_TRUE(c->print("{}-{}\n", "tail", 42));
    c->finish();  // the bytes after the last count are counted too, without a request
    c.reset();
    p.io.reset();  // as the worker does after the handler: the reader sees EOF
    reader.join();
    EXPECT_EQ(got, big + "tail-42\n");
    const scoreboard_slot& slot = env.board.slot(0);
    EXPECT_EQ(slot.requests.load(), 1u);
    EXPECT_EQ(slot.bytes.load(), big.size() + 8);
    EXPECT_EQ(env.ctx.requests(), 1u);
}

TEST(connection, a_handler_that_counts_nothing_counts_as_one_request) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    ASSERT_TRUE(c.write_all("hi\n"));
    c.finish();
    EXPECT_EQ(env.board.slot(0).requests.load(), 1u);
    EXPECT_EQ(env.board.slot(0).bytes.load(), 3u);
}

TEST(connection, writing_to_a_closed_peer_is_a_system_error) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    p.peer.reset();
    auto r = c.write_all(std::string(1 << 20, 'x'));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, std::errc::broken_pipe) << r.err().message;
}

TEST(connection, waiting_beats_the_heartbeat) {
    worker_env env;
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    c.set_timeout(1200ms);
    int64_t start = monotonic_ms();
    auto r = c.read_line();
    EXPECT_EQ(r.err().code, io_errc::timeout);
    // A worker waiting for its client is alive: its slot's heartbeat moved during the wait.
    EXPECT_GE(env.board.slot(0).heartbeat_ms.load(), start + 900);
}

TEST(connection, io_errors_say_what_happened) {
    EXPECT_EQ(make_error_code(io_errc::eof).message(), "connection closed by the peer");
    EXPECT_EQ(make_error_code(io_errc::timeout).message(), "timed out");
    EXPECT_EQ(make_error_code(io_errc::stopping).message(), "the worker is stopping");
    EXPECT_STREQ(io_category().name(), "preforkd.io");
    std::error_code ec = io_errc::timeout;  // is_error_code_enum
    EXPECT_EQ(ec, io_errc::timeout);
}

// Runs `body` in a child process (its own signal mask); the test passes when it returns 0.
// `parent` runs in the test process meanwhile, with the child's pid.
template <class Body, class Parent>
void in_child(Body body, Parent parent) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(body());
    parent(pid);
    int status = 0;
    pid_t r = 0;
    for (int i = 0; i < 500 && (r = ::waitpid(pid, &status, WNOHANG)) == 0; ++i)
        std::this_thread::sleep_for(10ms);
    if (r == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL() << "the child did not finish in 5 s";
    }
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child check " << WEXITSTATUS(status) << " failed";
}

// Stands in for the worker's event loop: records the signals handed to it.
struct recorder final : detail::signal_handler {
    uint64_t seen = 0;
    void on_signal(int signo) noexcept override { seen |= uint64_t{1} << signo; }
    bool got(int signo) const { return (seen & (uint64_t{1} << signo)) != 0; }
};

TEST(connection_signals, term_interrupts_a_waiting_call_and_reaches_the_loop) {
    pair p;
    // The child blocks the signals before it tells the parent it is ready (one byte).
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    in_child(
        [&]() -> int {
            worker_env env;
            recorder loop;
            detail::context_access::set_signal_handler(env.ctx, &loop);
            detail::signal_watch watch(env.ctx, 5000);
            if (!watch.open()) return 10;
            connection c(p.take(), env.ctx, &watch);
            c.set_timeout(10s);
            if (::write(ready[1], "r", 1) != 1) return 11;
            int64_t start = monotonic_ms();
            auto r = c.read_line();
            if (r || r.err().code != io_errc::stopping) return 12;
            if (elapsed_ms(start) > 2000) return 13;
            if (!c.stopping()) return 14;
            if (c.write_all("x")) return 15;    // every later call fails at once
            if (!loop.got(SIGTERM)) return 16;  // the loop knows, and stops after the handler
            return 0;
        },
        [&](pid_t pid) {
            char b;
            ASSERT_EQ(::read(ready[0], &b, 1), 1);
            std::this_thread::sleep_for(100ms);
            ::kill(pid, SIGTERM);
        });
    ::close(ready[0]);
    ::close(ready[1]);
}

TEST(connection_signals, quit_lets_the_call_finish_then_the_graceful_timeout_ends_it) {
    pair p;
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    in_child(
        [&]() -> int {
            worker_env env;
            recorder loop;
            detail::context_access::set_signal_handler(env.ctx, &loop);
            detail::signal_watch watch(env.ctx, 400);  // graceful_timeout 400 ms
            if (!watch.open()) return 10;
            connection c(p.take(), env.ctx, &watch);
            c.set_timeout(10s);
            if (::write(ready[1], "r", 1) != 1) return 11;
            auto line = c.read_line();  // QUIT comes first, then the line
            if (!line || *line != "after quit") return 12;
            if (!c.retiring() || c.stopping()) return 13;
            if (!loop.got(SIGQUIT)) return 17;  // at once: the loop closes its listeners
            if (!c.write_all("answered\n")) return 14;
            int64_t start = monotonic_ms();
            auto next = c.read_line();  // nothing more comes: the graceful timeout ends it
            if (next || next.err().code != io_errc::timeout) return 15;
            if (elapsed_ms(start) > 2000) return 16;
            return 0;
        },
        [&](pid_t pid) {
            char b;
            ASSERT_EQ(::read(ready[0], &b, 1), 1);
            std::this_thread::sleep_for(100ms);
            ::kill(pid, SIGQUIT);
            std::this_thread::sleep_for(100ms);
            p.send("after quit\n");
        });
    ::close(ready[0]);
    ::close(ready[1]);
}

// Issue 19, "Also": a handler computing between helper calls asks retiring() and learns of a
// QUIT at once, not at its next helper call or heartbeat.
TEST(connection_signals, retiring_notices_a_quit_at_once) {
    pair p;
    in_child(
        [&]() -> int {
            worker_env env;
            recorder loop;
            detail::context_access::set_signal_handler(env.ctx, &loop);
            detail::signal_watch watch(env.ctx, 5000);
            if (!watch.open()) return 10;
            connection c(p.take(), env.ctx, &watch);
            if (c.retiring()) return 11;
            ::raise(SIGQUIT);                   // blocked by the watch: pending until it is read
            if (!c.retiring()) return 12;       // no helper called in between
            if (!loop.got(SIGQUIT)) return 13;  // handed to the loop too: listeners close
            return 0;
        },
        [](pid_t) {});
}

// Issue 19 item 2: workers.max_requests covers blocking handlers: retiring() turns true once
// the worker has counted its last request.
TEST(connection, retiring_once_the_worker_has_served_max_requests) {
    worker_env env;
    detail::context_access::set_max_requests(env.ctx, 2);
    pair p;
    connection c(p.take(), env.ctx, nullptr);
    EXPECT_FALSE(c.retiring());
    c.count_request();
    EXPECT_FALSE(c.retiring());
    c.count_request();
    EXPECT_TRUE(c.retiring());
}

// A transport that makes the connection's life hard (issue 13 item 7): reads of one byte,
// writes of at most three, an EAGAIN before every other call, and bytes held inside the
// transport (as TLS holds decrypted records) that no poll() on the socket announces.
class stingy_transport final : public transport {
  public:
    explicit stingy_transport(unique_fd fd) : inner_(std::move(fd)) {}
    int fd() const noexcept override { return inner_.fd(); }
    ssize_t read(void* buf, size_t len) noexcept override {
        if (fail_reads_with_ != 0) {
            errno = fail_reads_with_;
            return -1;
        }
        if ((calls_++ & 1) == 0) {
            errno = EAGAIN;  // even with bytes held: the caller must look at pending()
            return -1;
        }
        if (!held_.empty()) {
            static_cast<char*>(buf)[0] = held_.front();
            held_.erase(0, 1);
            return 1;
        }
        return inner_.read(buf, std::min<size_t>(len, 1));
    }
    ssize_t write(const void* buf, size_t len, bool more) noexcept override {
        if ((calls_++ & 1) == 0) {
            errno = EAGAIN;
            return -1;
        }
        return inner_.write(buf, std::min<size_t>(len, 3), more);
    }
    ssize_t writev(const iovec* iov, int n) noexcept override { return inner_.writev(iov, n); }
    ssize_t sendfile(int f, off_t* off, size_t count) noexcept override {
        return inner_.sendfile(f, off, count);
    }
    void shutdown_write() noexcept override { inner_.shutdown_write(); }
    size_t pending() const noexcept override { return held_.size(); }

    std::string held_;         // "already decrypted": readable without the socket
    int fail_reads_with_ = 0;  // once set, reads fail with it

  private:
    plain_transport inner_;
    unsigned calls_ = 0;
};

TEST(connection_transport, short_transfers_and_eagain_still_move_every_byte) {
    worker_env env;
    pair p;
    stingy_transport io(std::move(p.server));
    accepted_connection ac;
    ac.io = &io;
    connection c(std::move(ac), env.ctx, nullptr);
    c.set_timeout(2s);
    p.send("first line\nsecond\n");
    EXPECT_EQ(*c.read_line(), "first line");
    EXPECT_EQ(*c.read_line(), "second");
    const std::string out = "a reply longer than three bytes\n";
    ASSERT_TRUE(c.write_all(out));
    std::string got(out.size(), '\0');
    ASSERT_EQ(::recv(p.peer.get(), got.data(), got.size(), MSG_WAITALL),
              static_cast<ssize_t>(got.size()));
    EXPECT_EQ(got, out);
}

TEST(connection_transport, bytes_held_by_the_transport_are_read_without_waiting) {
    worker_env env;
    pair p;
    stingy_transport io(std::move(p.server));
    io.held_ = "held\n";  // nothing on the socket: a poll() there would wait for ever
    accepted_connection ac;
    ac.io = &io;
    connection c(std::move(ac), env.ctx, nullptr);
    c.set_timeout(5s);
    int64_t start = monotonic_ms();
    EXPECT_EQ(*c.read_line(), "held");
    EXPECT_LT(elapsed_ms(start), 1000);
}

TEST(connection_transport, a_read_error_reaches_the_handler_as_a_system_error) {
    worker_env env;
    pair p;
    stingy_transport io(std::move(p.server));
    io.fail_reads_with_ = ECONNRESET;
    accepted_connection ac;
    ac.io = &io;
    connection c(std::move(ac), env.ctx, nullptr);
    auto r = c.read_line();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, std::error_code(ECONNRESET, std::system_category()));
}

}  // namespace
}  // namespace preforkd
