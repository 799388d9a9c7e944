// The worker's accept loop, seen through the examples (daytime: event-driven; echo: blocking):
// lost accept wake-ups, workers.max_requests for blocking handlers, retiring and stopping
// workers that must not take queued clients, and echo's own line limit (issue 19).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "integration/example_fixture.hpp"
#include "integration/harness.hpp"

namespace preforkd::test {
namespace {

// The workers' pids in the order the supervisor spawned them (its log).
std::vector<pid_t> spawn_order(const std::string& log) {
    static const std::regex spawned("spawned worker ([0-9]+)");
    std::vector<pid_t> out;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), spawned);
         it != std::sregex_iterator(); ++it)
        out.push_back(static_cast<pid_t>(std::stol((*it)[1].str())));
    return out;
}

// Issue 19 item 1. A worker that fills up on the last accept of a batch must leave the
// listener at once: registered (EPOLLEXCLUSIVE), it is the one the next connection wakes,
// and it can only leave it queued while its idle peer sleeps on.
TEST_F(example_test, daytime_a_worker_that_fills_up_leaves_new_connections_to_its_peer) {
    start(PREFORKD_EXAMPLE_DAYTIME,
          {{"workers", "start = 2\nmax = 2\nmin_spare = 0\nmax_spare = 2\nmax_connections = 16\n"},
           {"daytime", "idle_timeout = \"30s\"\n"}});
    ASSERT_TRUE(srv_->wait_workers(2));
    auto order = spawn_order(srv_->error_log());
    ASSERT_EQ(order.size(), 2u) << srv_->error_log();
    std::this_thread::sleep_for(200ms);  // both in epoll_wait, the first registered first
    for (pid_t w : order) ::kill(w, SIGSTOP);
    std::vector<std::unique_ptr<line_client>> held;
    for (int i = 0; i < 16; ++i) {
        held.push_back(std::make_unique<line_client>(port_));
        ASSERT_TRUE(held.back()->connected());
    }
    std::this_thread::sleep_for(100ms);
    ::kill(order[0], SIGCONT);  // takes all 16 in one batch: full
    std::this_thread::sleep_for(300ms);
    ::kill(order[1], SIGCONT);
    std::this_thread::sleep_for(300ms);
    auto t = std::chrono::steady_clock::now();
    line_client late(port_, 10s);
    auto answer = late.ask("time?");
    EXPECT_TRUE(answer) << srv_->error_log();
    EXPECT_LT(since_ms(t), 2000) << "the 17th connection waited for a full worker";
    // The held connections were all taken by the first worker, and are served.
    EXPECT_TRUE(held.front()->ask("time?"));
    EXPECT_TRUE(held.back()->ask("time?"));
}

// Issue 19 item 1: a worker takes no more connections than its descriptor limit holds, so it
// does not reach EMFILE (and pause with a connection queued) while a peer has room.
TEST_F(example_test, daytime_workers_stay_within_their_descriptor_limit) {
    start(PREFORKD_EXAMPLE_DAYTIME, {{"workers",
                                      "start = 2\nmax = 2\nmin_spare = 0\nmax_spare = 2\n"
                                      "max_connections = 512\nrlimit_nofile = 48\n"},
                                     {"daytime", "idle_timeout = \"30s\"\n"}});
    ASSERT_TRUE(srv_->wait_workers(2));
    ASSERT_TRUE(wait_until([&] { return log_count("lowered to") == 2; }, 5s)) << srv_->error_log();
    std::vector<std::unique_ptr<line_client>> clients;
    for (int i = 0; i < 40; ++i) {
        clients.push_back(std::make_unique<line_client>(port_, 3s));
        ASSERT_TRUE(clients.back()->connected());
        ASSERT_TRUE(clients.back()->ask("time?")) << "connection " << i << "\n"
                                                  << srv_->error_log();
    }
    EXPECT_EQ(log_count("pausing accept"), 0u) << srv_->error_log();
}

// Issue 19 item 2: workers.max_requests counts for blocking handlers too. max = 1 worker,
// max_requests = 2: retiring() turns true with the second line, and queued connections are
// served by successive workers, two requests each.
TEST_F(example_test, echo_max_requests_retires_a_blocking_worker) {
    start(PREFORKD_EXAMPLE_ECHO,
          {{"workers", "start = 1\nmax = 1\nmin_spare = 0\nmax_spare = 1\nmax_requests = 2\n"}});
    ASSERT_TRUE(srv_->wait_workers(1));
    {
        line_client c(port_);
        ASSERT_TRUE(c.send("1\n2\n3\n4\n5\n6\n"));
        EXPECT_EQ(c.line(), "1");
        EXPECT_EQ(c.line(), "2");
        // retiring() is true after the second: the handler lets go.
        EXPECT_TRUE(c.closed_by_peer(3s));
    }
    EXPECT_TRUE(wait_until([&] { return log_count("spawned worker") >= 2; }, 5s))
        << srv_->error_log();
    const size_t spawned_before = log_count("spawned worker");
    std::vector<std::unique_ptr<line_client>> queued;
    for (int i = 0; i < 10; ++i) {
        queued.push_back(std::make_unique<line_client>(port_, 15s));
        ASSERT_TRUE(queued.back()->send("q" + std::to_string(i) + "\n"));
        queued.back()->close_write();
    }
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(queued[static_cast<size_t>(i)]->line(), "q" + std::to_string(i))
            << srv_->error_log();
    // Ten one-line connections, two requests per worker: five workers at least.
    EXPECT_TRUE(wait_until([&] { return log_count("spawned worker") >= spawned_before + 4; }, 5s))
        << srv_->error_log();
}

// Issue 19 item 5: a QUIT read inside a handler closes the listener; the accept loop must
// notice before its next accept4 (no "accept: Bad file descriptor"). The queued client is
// left to the replacement.
TEST_F(example_test, echo_a_worker_retired_inside_its_handler_accepts_nothing_more) {
    start(PREFORKD_EXAMPLE_ECHO,
          {{"workers", "start = 1\nmax = 1\nmin_spare = 0\nmax_spare = 1\n"}});
    ASSERT_TRUE(srv_->wait_workers(1));
    pid_t worker = srv_->workers().at(0);
    line_client a(port_);
    ASSERT_EQ(a.ask("a1"), "a1");
    line_client b(port_, 10s);  // queued behind a
    ASSERT_TRUE(b.send("b1\n"));
    std::this_thread::sleep_for(1100ms);  // older than the crash window
    ::kill(worker, SIGQUIT);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(a.ask("a2"), "a2");  // the exchange in hand is answered, then the handler returns
    EXPECT_TRUE(a.closed_by_peer(3s));
    EXPECT_EQ(b.line(), "b1") << srv_->error_log();
    EXPECT_EQ(log_count("Bad file descriptor"), 0u) << srv_->error_log();
}

// Issue 19 item 5: a worker told to stop (TERM) in its handler must not take, and drop, the
// clients queued behind it: the replacement serves them.
TEST_F(example_test, echo_a_stopped_worker_leaves_queued_clients_to_its_replacement) {
    start(PREFORKD_EXAMPLE_ECHO,
          {{"workers", "start = 1\nmax = 1\nmin_spare = 0\nmax_spare = 1\n"}});
    ASSERT_TRUE(srv_->wait_workers(1));
    pid_t worker = srv_->workers().at(0);
    line_client a(port_);
    ASSERT_EQ(a.ask("a1"), "a1");
    std::vector<std::unique_ptr<line_client>> queued;
    for (int i = 0; i < 3; ++i) {
        queued.push_back(std::make_unique<line_client>(port_, 10s));
        ASSERT_TRUE(queued.back()->send("q" + std::to_string(i) + "\n"));
        queued.back()->close_write();  // one line each: their handlers end one after the other
    }
    std::this_thread::sleep_for(1100ms);  // older than the crash window
    ::kill(worker, SIGTERM);
    EXPECT_TRUE(a.closed_by_peer(3s));
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(queued[static_cast<size_t>(i)]->line(), "q" + std::to_string(i))
            << "queued client " << i << " was dropped\n"
            << srv_->error_log();
}

// Issue 19, "Also": max_line is the longest line accepted, its terminator not counted.
TEST_F(example_test, echo_accepts_a_line_of_exactly_max_line_bytes) {
    start(PREFORKD_EXAMPLE_ECHO, {{"echo", "max_line = 4096\n"}});
    line_client c(port_);
    const std::string exact(4096, 'x');
    EXPECT_EQ(c.ask(exact), exact);
    EXPECT_EQ(c.ask(exact + "\r"), exact);  // CRLF
    EXPECT_EQ(c.ask(exact + "y"), "line too long");
    EXPECT_TRUE(c.closed_by_peer(2s));
}

// A blocking application behind a `proxy` listener: the engine reads the PROXY header before
// the handler runs, which sees only its own bytes; without a header it never runs.
TEST_F(example_test, echo_on_a_proxy_listener_gets_the_bytes_after_the_header) {
    start(PREFORKD_EXAMPLE_ECHO,
          {{"server", "listen = [\"127.0.0.1:" + std::to_string(port_) + " proxy\"]\n"}});
    line_client c(port_);
    ASSERT_TRUE(c.send("PROXY TCP4 203.0.113.7 127.0.0.1 40000 7\r\n"));
    EXPECT_EQ(c.ask("hello"), "hello");
    EXPECT_EQ(c.ask("again"), "again");
    line_client bare(port_);
    ASSERT_TRUE(bare.send("hello\n"));
    EXPECT_TRUE(bare.closed_by_peer(2s));
    EXPECT_EQ(bare.line(), std::nullopt);
}

}  // namespace
}  // namespace preforkd::test
