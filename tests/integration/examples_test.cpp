// The embedding API through real servers on loopback: the examples (echo: blocking; daytime:
// event-driven) and a blocking probe (apps/blocking_probe.cpp), driven with sockets and
// signals.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "integration/example_fixture.hpp"
#include "integration/harness.hpp"

namespace preforkd::test {
namespace {

// ---- echo (blocking) ----

TEST_F(example_test, echo_answers_every_line_with_its_prefix) {
    start(PREFORKD_EXAMPLE_ECHO, {{"echo", "prefix = \"> \"\n"}});
    line_client a(port_), b(port_);
    ASSERT_TRUE(a.connected() && b.connected());
    EXPECT_EQ(a.ask("hello"), "> hello");
    EXPECT_EQ(b.ask("from b"), "> from b");  // two clients, two workers, at once
    EXPECT_EQ(a.ask("crlf\r"), "> crlf");
    // Several lines in one packet are answered in order.
    ASSERT_TRUE(a.send("1\n2\n3\n"));
    EXPECT_EQ(a.line(), "> 1");
    EXPECT_EQ(a.line(), "> 2");
    EXPECT_EQ(a.line(), "> 3");
    // A last line without a newline is answered when the client closes its side.
    ASSERT_TRUE(b.send("last"));
    b.close_write();
    EXPECT_EQ(b.line(), "> last");
    EXPECT_TRUE(b.closed_by_peer(2s));
}

TEST_F(example_test, echo_drops_a_line_over_its_limit) {
    start(PREFORKD_EXAMPLE_ECHO, {{"echo", "max_line = 16\n"}});
    line_client c(port_);
    EXPECT_EQ(c.ask(std::string(40, 'x')), "line too long");
    EXPECT_TRUE(c.closed_by_peer(2s));
}

TEST_F(example_test, echo_drops_a_silent_client_after_its_timeout) {
    start(PREFORKD_EXAMPLE_ECHO, {{"echo", "timeout = \"300ms\"\n"}});
    line_client c(port_);
    EXPECT_EQ(c.ask("quick"), "quick");
    auto t = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.closed_by_peer(3s));
    EXPECT_GE(since_ms(t), 250);
}

TEST_F(example_test, echo_rejects_a_bad_table_at_start_with_file_line_and_key) {
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(render({{"echo", "prefix = \"> \"\nmax_line = 0\n"}}));
    auto r = run_binary({"-t", "-c", srv_->config_path().string()}, 10s,
                        spawn_options{.binary = PREFORKD_EXAMPLE_ECHO});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("preforkd.toml:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("echo.max_line"), std::string::npos) << r.output;
    srv_->write_config(render({{"echo", "colour = \"red\"\n"}}));
    r = run_binary({"-t", "-c", srv_->config_path().string()}, 10s,
                   spawn_options{.binary = PREFORKD_EXAMPLE_ECHO});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("echo.colour"), std::string::npos) << r.output;
}

TEST_F(example_test, echo_sighup_reloads_its_own_table) {
    start(PREFORKD_EXAMPLE_ECHO, {{"echo", "prefix = \"old: \"\n"}});
    line_client before(port_);
    EXPECT_EQ(before.ask("x"), "old: x");

    rewrite({{"echo", "prefix = \"new: \"\n"}});
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_generation(2)) << srv_->error_log();
    // An old worker that has not yet read its QUIT may still take a new connection.
    EXPECT_TRUE(wait_until(
        [&] {
            line_client after(port_);
            return after.ask("y") == "new: y";
        },
        10s));
    // The connection made before the reload keeps its generation's settings: its next line
    // is answered, then its retiring worker lets go.
    EXPECT_EQ(before.ask("z"), "old: z");
    EXPECT_TRUE(before.closed_by_peer(3s));

    // An invalid table on reload changes nothing.
    rewrite({{"echo", "prefix = 42\n"}});
    srv_->signal(SIGHUP);
    ASSERT_TRUE(
        wait_until([&] { return srv_->error_log().find("echo.prefix") != std::string::npos; }, 5s))
        << srv_->error_log();
    line_client still(port_);
    EXPECT_EQ(still.ask("w"), "new: w");
}

TEST_F(example_test, echo_ttin_and_ttou_change_the_pool) {
    start(PREFORKD_EXAMPLE_ECHO, {{"workers", "min_spare = 0\nmax_spare = 8\n"}});
    ASSERT_TRUE(srv_->wait_workers(2));
    srv_->signal(SIGTTIN);
    EXPECT_TRUE(srv_->wait_workers(3)) << srv_->workers().size();
    std::this_thread::sleep_for(200ms);
    srv_->signal(SIGTTOU);
    std::this_thread::sleep_for(200ms);
    srv_->signal(SIGTTOU);
    EXPECT_TRUE(srv_->wait_workers(1)) << srv_->workers().size();
    line_client c(port_);
    EXPECT_EQ(c.ask("still here"), "still here");
}

// ---- blocking handlers (probe) ----

TEST_F(example_test, blocking_handlers_get_one_connection_per_worker_whatever_the_file_says) {
    // No spares: workers come only from TTIN, so the test decides when one starts.
    start(PREFORKD_BLOCKING_PROBE,
          {{"workers", "start = 1\nmin_spare = 0\nmax_connections = 64\n"}});
    line_client a(port_);
    auto pid_a = a.ask("pid");
    ASSERT_TRUE(pid_a);
    // The only worker is in a's handler: c and d wait in the backlog, together.
    line_client c(port_), d(port_);
    std::this_thread::sleep_for(100ms);
    // A new worker finds both. Allowed 64 connections, it would take both, and d would wait
    // behind c's handler for good; it takes one, and leaves d to the next worker.
    srv_->signal(SIGTTIN);
    std::this_thread::sleep_for(300ms);
    srv_->signal(SIGTTIN);
    auto pid_c = c.ask("pid");
    auto pid_d = d.ask("pid");
    ASSERT_TRUE(pid_c && pid_d) << srv_->error_log();
    EXPECT_NE(*pid_c, *pid_d);
    EXPECT_NE(*pid_a, *pid_c);
    EXPECT_NE(*pid_a, *pid_d);
    EXPECT_EQ(a.ask("pid"), pid_a);
}

TEST_F(example_test, a_crash_in_the_handler_costs_only_its_connection) {
    start(PREFORKD_BLOCKING_PROBE);
    ASSERT_TRUE(srv_->wait_workers(2));
    line_client a(port_), b(port_);
    auto pid_a = a.ask("pid");
    auto pid_b = b.ask("pid");
    ASSERT_TRUE(pid_a && pid_b);
    ASSERT_NE(*pid_a, *pid_b);
    ASSERT_TRUE(a.send("abort\n"));
    EXPECT_TRUE(a.closed_by_peer(3s));
    // The other client never notices; the crashed worker is replaced.
    EXPECT_EQ(b.ask("still"), "still");
    EXPECT_EQ(b.ask("pid"), pid_b);
    pid_t dead = std::atoi(pid_a->c_str());
    EXPECT_TRUE(wait_until(
        [&] {
            auto w = srv_->workers();
            return w.size() == 2 && std::find(w.begin(), w.end(), dead) == w.end();
        },
        15s))
        << srv_->error_log();
    line_client c(port_);
    EXPECT_EQ(c.ask("new"), "new");
}

TEST_F(example_test, an_exception_in_the_handler_closes_only_its_connection) {
    start(PREFORKD_BLOCKING_PROBE, {{"workers", "start = 1\nmin_spare = 0\n"}});
    line_client a(port_);
    auto pid = a.ask("pid");
    ASSERT_TRUE(pid);
    ASSERT_TRUE(a.send("throw\n"));
    EXPECT_TRUE(a.closed_by_peer(3s));
    line_client b(port_);
    EXPECT_EQ(b.ask("pid"), pid);  // the same worker serves on
    EXPECT_NE(srv_->error_log().find("the handler threw: asked to throw"), std::string::npos)
        << srv_->error_log();
}

TEST_F(example_test, term_interrupts_a_handler_blocked_on_its_client) {
    start(PREFORKD_BLOCKING_PROBE);
    line_client a(port_);
    ASSERT_EQ(a.ask("waiting"), "waiting");  // the handler now waits for the next line
    auto t = std::chrono::steady_clock::now();
    EXPECT_EQ(srv_->stop(SIGTERM, 10s), 0);
    // Without the worker noticing TERM in its wait, the supervisor would KILL it after 5 s.
    EXPECT_LT(since_ms(t), 3000);
    EXPECT_TRUE(a.closed_by_peer(1s));
}

TEST_F(example_test, quit_lets_a_connection_finish_then_stops) {
    start(PREFORKD_BLOCKING_PROBE);
    auto a = std::make_unique<line_client>(port_);
    ASSERT_EQ(a->ask("retiring"), "no");
    srv_->signal(SIGQUIT);
    // New connections are refused at once; the one in hand goes on.
    EXPECT_TRUE(wait_until([&] { return !line_client(port_).connected(); }, 3s));
    EXPECT_EQ(a->ask("retiring"), "yes");
    EXPECT_EQ(a->ask("more"), "more");
    // The server waits for the client (graceful_timeout is 5 s), then stops when it leaves.
    EXPECT_FALSE(srv_->wait_exit(300ms));
    a.reset();
    EXPECT_EQ(srv_->wait_exit(3s), 0);
}

TEST_F(example_test, the_graceful_timeout_ends_a_silent_connection) {
    start(PREFORKD_BLOCKING_PROBE, {{"workers", "graceful_timeout = \"500ms\"\n"}});
    line_client a(port_);
    ASSERT_EQ(a.ask("hello"), "hello");
    auto t = std::chrono::steady_clock::now();
    srv_->signal(SIGQUIT);
    EXPECT_TRUE(a.closed_by_peer(4s));
    EXPECT_EQ(srv_->wait_exit(5s), 0);
    EXPECT_LT(since_ms(t), 4000);
}

TEST_F(example_test, a_handler_waiting_for_its_client_is_not_taken_for_hung) {
    start(PREFORKD_BLOCKING_PROBE, {{"workers", "heartbeat_timeout = \"3s\"\n"}});
    line_client a(port_);
    auto pid = a.ask("pid");
    ASSERT_TRUE(pid);
    std::this_thread::sleep_for(4500ms);  // idle past the timeout: the handler waits in read_line
    EXPECT_EQ(a.ask("pid"), pid);
    EXPECT_EQ(srv_->error_log().find("heartbeat"), std::string::npos) << srv_->error_log();
}

TEST_F(example_test, usr1_reopens_the_error_log_of_a_worker_in_a_handler) {
    start(PREFORKD_BLOCKING_PROBE, {{"workers", "start = 1\nmin_spare = 0\n"}});
    line_client a(port_);
    ASSERT_EQ(a.ask("log before"), "logged");
    fs::path log = dir_.path() / "error.log";
    fs::rename(log, dir_.path() / "error.log.1");
    srv_->signal(SIGUSR1);
    ASSERT_TRUE(wait_until([&] { return fs::exists(log); }, 3s));
    std::this_thread::sleep_for(200ms);  // the worker's poll sees USR1 at once
    ASSERT_EQ(a.ask("log after rotation"), "logged");
    EXPECT_TRUE(wait_until(
        [&] { return read_file(log).find("probe: after rotation") != std::string::npos; }, 3s))
        << "new log:\n"
        << read_file(log) << "\nold log:\n"
        << read_file(dir_.path() / "error.log.1");
}

// A worker's own signals stay blocked from its fork until its loop reads them. Here every
// worker takes 500 ms to start (make_service sleeps), and each TTIN is followed at once by a
// USR1 (the supervisor passes it to every worker): unblocked, it would kill the starting
// worker, which would count as a crash.
TEST_F(example_test, usr1_reaching_a_slow_starting_worker_waits_for_its_loop) {
    start(PREFORKD_BLOCKING_PROBE, {{"workers", "start = 1\nmin_spare = 0\nmax_spare = 16\n"},
                                    {"probe", "start_delay = \"500ms\"\n"}});
    ASSERT_TRUE(srv_->wait_workers(1));
    constexpr size_t rounds = 4;
    for (size_t i = 0; i < rounds; ++i) {
        // One after the other: sent together, the supervisor would read USR1 first (a
        // signalfd hands pending signals over by number).
        srv_->signal(SIGTTIN);
        ASSERT_TRUE(wait_until([&] { return log_count("spawned worker") == 2 + i; }, 3s));
        srv_->signal(SIGUSR1);
    }
    // Every one of them comes up, and acts on the USR1 once its loop runs.
    ASSERT_TRUE(srv_->wait_workers(1 + rounds)) << srv_->error_log();
    for (pid_t w : srv_->workers()) {
        std::string reopened = "worker[" + std::to_string(w) + "]: reopened the logs";
        EXPECT_TRUE(wait_until([&] { return log_count(reopened) > 0; }, 3s)) << srv_->error_log();
    }
    EXPECT_EQ(log_count("spawned worker"), 1 + rounds) << srv_->error_log();
    std::string log = srv_->error_log();
    EXPECT_EQ(log.find("killed by signal"), std::string::npos) << log;
    EXPECT_EQ(log.find("crashed"), std::string::npos) << log;
    line_client c(port_);
    EXPECT_EQ(c.ask("still"), "still");
}

// The same for QUIT (a graceful stop, a retire, the supervisor's death): a worker still
// starting retires cleanly once its loop runs, instead of dumping its core.
TEST_F(example_test, quit_reaching_a_slow_starting_worker_lets_it_retire) {
    start(PREFORKD_BLOCKING_PROBE,
          {{"workers", "start = 1\nmin_spare = 0\n"}, {"probe", "start_delay = \"500ms\"\n"}},
          {.rlimits = {{RLIMIT_CORE, 0}}});
    ASSERT_TRUE(srv_->wait_workers(1));
    srv_->signal(SIGTTIN);
    ASSERT_TRUE(wait_until([&] { return log_count("spawned worker") == 2; }, 3s));
    srv_->signal(SIGQUIT);
    EXPECT_EQ(srv_->wait_exit(10s), 0);
    std::string log = srv_->error_log();
    EXPECT_EQ(log.find("killed by signal"), std::string::npos) << log;
    EXPECT_EQ(log_count("retired"), 2u) << log;
}

// A worker that fails by itself as it starts (abort() in make_service, every time): the
// supervisor backs off, 100 ms doubling to a 10 s cap with one probe at a time, instead of
// fork-looping. The broken file comes by a reload, as broken deployments do (a broken file
// at start makes the start fail); the old generation serves meanwhile. A fixed file brings
// the pool back.
TEST_F(example_test, a_worker_crashing_at_start_backs_off_then_a_fixed_file_brings_the_pool_back) {
    start(PREFORKD_BLOCKING_PROBE, {{"workers", "start = 2\n"}, {"probe", "tag = \"good\"\n"}},
          {.rlimits = {{RLIMIT_CORE, 0}}});
    ASSERT_TRUE(srv_->wait_workers(2));
    rewrite({{"workers", "start = 2\n"}, {"probe", "tag = \"broken\"\ncrash_at_start = true\n"}});
    srv_->signal(SIGHUP);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reloading: generation 2") != std::string::npos; },
        3s));
    std::this_thread::sleep_for(10s - (std::chrono::steady_clock::now() - t0));
    // "spawned worker PID (generation 2, slot N)": the forks of the crashing generation.
    size_t forks = 0;
    {
        std::istringstream log(srv_->error_log());
        for (std::string line; std::getline(log, line);)
            if (line.find("spawned worker") != std::string::npos &&
                line.find("(generation 2,") != std::string::npos)
                ++forks;
    }
    std::printf("[figures] a worker crashing at start: %zu forks in 10 s\n", forks);
    std::fflush(stdout);
    // Two at once (the new generation's start), then one probe after each delay: 0.2, 0.4,
    // 0.8, 1.6, 3.2 s (the next after 6.4 s more, past the 10 s): 7 forks, fewer on a slow
    // machine, never more. Without back-off: thousands; with the back-off restarted once
    // (the old generation's young workers coming of age, an earlier bug): 11.
    EXPECT_LE(forks, 9u) << srv_->error_log();
    EXPECT_GE(forks, 5u) << srv_->error_log();
    EXPECT_NE(srv_->error_log().find("in a row): next spawn in"), std::string::npos);
    EXPECT_TRUE(zombie_children_of(srv_->pid()).empty());
    // The old generation served all along.
    {
        line_client c(port_);
        EXPECT_EQ(c.ask("tag"), "good");
    }

    rewrite({{"workers", "start = 2\n"}, {"probe", "tag = \"fixed\"\n"}});
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_generation(3, 15s)) << srv_->error_log();
    EXPECT_TRUE(wait_until(
        [&] {
            line_client c(port_);
            return c.ask("tag") == "fixed";
        },
        5s));
    EXPECT_TRUE(srv_->wait_workers(2, 10s)) << srv_->workers().size();
}

// Issue 6: a HUP while a reload is still bringing its generation up is queued, not lost and
// not run beside it; it runs once that generation serves, and its file wins.
TEST_F(example_test, a_hup_during_a_slow_reload_is_queued_and_applied_after_it) {
    start(PREFORKD_BLOCKING_PROBE, {{"probe", "tag = \"zero\"\n"}});
    rewrite({{"probe", "tag = \"A\"\nstart_delay = \"1500ms\"\n"}});
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reloading: generation 2") != std::string::npos; },
        3s));
    // Generation 2's workers take 1.5 s to come up: this HUP finds its reload running.
    rewrite({{"probe", "tag = \"B\"\n"}});
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_generation(3, 15s)) << srv_->error_log();
    std::string log = srv_->error_log();
    size_t queued = log.find("reload queued");
    size_t second_serves = log.find("generation 2 serves");
    size_t third_starts = log.find("reloading: generation 3");
    ASSERT_NE(queued, std::string::npos) << log;
    ASSERT_NE(second_serves, std::string::npos) << log;
    ASSERT_NE(third_starts, std::string::npos) << log;
    // One after the other: generation 3 began only once generation 2 served.
    EXPECT_LT(queued, second_serves) << log;
    EXPECT_LT(second_serves, third_starts) << log;
    EXPECT_EQ(log_count("reloading: generation"), 2u) << log;
    EXPECT_TRUE(wait_until(
        [&] {
            line_client c(port_);
            return c.ask("tag") == "B";
        },
        5s));
    EXPECT_TRUE(srv_->wait_workers(2, 10s)) << srv_->workers().size();
}

// ---- daytime (event-driven) ----

std::string this_year() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    return std::to_string(1900 + tm.tm_year);
}

TEST_F(example_test, daytime_answers_every_line_and_one_worker_holds_many_connections) {
    start(PREFORKD_EXAMPLE_DAYTIME,
          {{"workers", "start = 1\nmin_spare = 0\n"}, {"daytime", "format = \"year %Y\"\n"}});
    std::vector<std::unique_ptr<line_client>> clients;
    for (int i = 0; i < 5; ++i) clients.push_back(std::make_unique<line_client>(port_));
    for (auto& c : clients) EXPECT_EQ(c->ask(""), "year " + this_year());
    // All five are open at once on the one worker, and each is answered again.
    EXPECT_EQ(srv_->workers().size(), 1u);
    for (auto& c : clients) EXPECT_EQ(c->ask("again"), "year " + this_year());
}

TEST_F(example_test, daytime_closes_idle_connections_and_reloads_its_format) {
    start(PREFORKD_EXAMPLE_DAYTIME, {{"daytime", "format = \"A %Y\"\nidle_timeout = \"300ms\"\n"}});
    line_client a(port_);
    EXPECT_EQ(a.ask("now"), "A " + this_year());
    EXPECT_TRUE(a.closed_by_peer(3s));

    rewrite({{"daytime", "format = \"B %Y\"\n"}});
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_generation(2)) << srv_->error_log();
    EXPECT_TRUE(wait_until(
        [&] {
            line_client b(port_);
            return b.ask("now") == "B " + this_year();
        },
        5s));
}

TEST_F(example_test, daytime_ttin_and_ttou_change_the_pool) {
    start(PREFORKD_EXAMPLE_DAYTIME,
          {{"workers", "min_spare = 0\nmax_spare = 8\n"}, {"daytime", "format = \"year %Y\"\n"}});
    ASSERT_TRUE(srv_->wait_workers(2));
    srv_->signal(SIGTTIN);
    EXPECT_TRUE(srv_->wait_workers(3)) << srv_->workers().size();
    EXPECT_NE(srv_->error_log().find("TTIN: pool floor 2 -> 3"), std::string::npos)
        << srv_->error_log();
    std::this_thread::sleep_for(200ms);
    srv_->signal(SIGTTOU);
    std::this_thread::sleep_for(200ms);
    srv_->signal(SIGTTOU);
    EXPECT_TRUE(srv_->wait_workers(1)) << srv_->workers().size();
    EXPECT_NE(srv_->error_log().find("TTOU: pool floor 2 -> 1"), std::string::npos)
        << srv_->error_log();
    // The floor holds: the spare bounds (min_spare 0) do not grow the pool back.
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(srv_->workers().size(), 1u);
    line_client c(port_);
    EXPECT_EQ(c.ask("now"), "year " + this_year());
}

}  // namespace
}  // namespace preforkd::test
