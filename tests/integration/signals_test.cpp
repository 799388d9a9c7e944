// The supervisor under signals: respawn, reload, stop, pool size.
#include <signal.h>

#include <algorithm>
#include <set>

#include "integration/fixture.hpp"

namespace preforkd::test {
namespace {

using supervision = server_test;

std::set<pid_t> as_set(const std::vector<pid_t>& v) { return {v.begin(), v.end()}; }

TEST_F(supervision, starts_exactly_workers_start_workers) {
    cfg_.set("workers", "start", "3");
    start();
    EXPECT_TRUE(srv_->wait_workers(3));
    // And stays there: no spares beyond the floor while idle (3 idle <= max_spare).
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(srv_->workers().size(), 3u);
}

TEST_F(supervision, a_killed_worker_is_replaced_within_2s) {
    cfg_.set("workers", "start", "2");
    start();
    ASSERT_TRUE(srv_->wait_workers(2));
    auto before = srv_->workers();
    ::kill(before[0], SIGKILL);
    EXPECT_TRUE(wait_until(
        [&] {
            auto now = srv_->workers();
            return now.size() == 2 && std::find(now.begin(), now.end(), before[0]) == now.end();
        },
        2s));
    EXPECT_TRUE(zombie_children_of(srv_->pid()).empty());
    EXPECT_NE(srv_->error_log().find("was killed by signal KILL"), std::string::npos);
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(supervision, hup_with_a_new_worker_count_replaces_every_worker) {
    cfg_.set("workers", "start", "2");
    start();
    ASSERT_TRUE(srv_->wait_workers(2));
    auto old = as_set(srv_->workers());
    cfg_.set("workers", "start", "3");
    rewrite_config();
    srv_->signal(SIGHUP);
    EXPECT_TRUE(wait_until(
        [&] {
            auto now = srv_->workers();
            if (now.size() != 3) return false;
            for (pid_t p : now)
                if (old.count(p)) return false;
            return true;
        },
        8s))
        << srv_->error_log();
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(supervision, hup_with_a_broken_file_keeps_the_workers_serving) {
    start();
    ASSERT_TRUE(srv_->wait_workers(2));
    auto before = srv_->workers();
    write_file(srv_->config_path(), "[workers]\nstart = \"many\"\n");
    srv_->signal(SIGHUP);
    EXPECT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reload failed") != std::string::npos; }, 3s));
    EXPECT_NE(srv_->error_log().find("workers.start"), std::string::npos) << srv_->error_log();
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(srv_->workers(), before);
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(supervision, term_stops_within_6s_with_no_worker_left) {
    cfg_.set("workers", "start", "3");
    start();
    ASSERT_TRUE(srv_->wait_workers(3));
    auto kids = srv_->workers();
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(srv_->stop(SIGTERM, 6s), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 6s);
    for (pid_t k : kids) EXPECT_NE(::kill(k, 0), 0) << "worker " << k << " survived";
    EXPECT_FALSE(fs::exists(srv_->pid_file()));
}

TEST_F(supervision, quit_finishes_in_flight_requests_then_refuses_new_connections) {
    start();
    http_client c(port_);
    ASSERT_TRUE(c.connected());
    // A request head in progress when QUIT arrives is finished, and answered with close.
    ASSERT_TRUE(c.send("GET /index.html HTTP/1.1\r\nHost: x\r\n"));
    std::this_thread::sleep_for(100ms);
    srv_->signal(SIGQUIT);
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(c.send("\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_EQ(srv_->wait_exit(7s), 0);
    EXPECT_FALSE(http_client(port_).connected());
}

TEST_F(supervision, ttin_and_ttou_move_the_pool_by_one) {
    cfg_.set("workers", "start", "2");
    start();
    ASSERT_TRUE(srv_->wait_workers(2));
    srv_->signal(SIGTTIN);
    EXPECT_TRUE(srv_->wait_workers(3, 3s));
    // Two of the same classic signal pending at once merge into one: space them.
    srv_->signal(SIGTTOU);
    std::this_thread::sleep_for(200ms);
    srv_->signal(SIGTTOU);
    EXPECT_TRUE(srv_->wait_workers(1, 5s)) << srv_->error_log();
    // The floor is 1 and stays >= 1.
    srv_->signal(SIGTTOU);
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(srv_->workers().size(), 1u);
}

// Issue 18.1: an ignored SIGCHLD survives exec (init scripts, CI runners and shells set it),
// and with it the kernel reaps the workers itself: no SIGCHLD, waitpid only says ECHILD.
// The supervisor resets it to SIG_DFL before blocking it.
TEST_F(supervision, started_with_sigchld_ignored_it_replaces_a_killed_worker_and_term_stops_it) {
    fs::path wrapper = dir_.path() / "ignore_sigchld.py";
    write_file(wrapper, std::string("#!/usr/bin/python3\n"
                                    "import os, signal, sys\n"
                                    "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
                                    "os.execv('") +
                            PREFORKD_BINARY + "', ['preforkd'] + sys.argv[1:])\n");
    fs::permissions(wrapper, fs::perms::owner_all);
    cfg_.set("workers", "start", "2");
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(cfg_.render());
    write_file(srv_->root() / "index.html", "<h1>hello</h1>\n");
    ASSERT_TRUE(srv_->start({"-F"}, {.binary = wrapper.string()})) << srv_->output();
    ASSERT_TRUE(srv_->wait_workers(2));
    pid_t victim = srv_->workers()[0];
    ::kill(victim, SIGKILL);
    EXPECT_TRUE(wait_until(
        [&] {
            auto w = srv_->workers();
            return w.size() == 2 && std::find(w.begin(), w.end(), victim) == w.end();
        },
        3s))
        << "the killed worker was not replaced\n"
        << srv_->error_log();
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    auto kids = srv_->workers();
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(srv_->stop(SIGTERM, 8s), 0) << srv_->error_log();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    for (pid_t k : kids) EXPECT_NE(::kill(k, 0), 0) << "worker " << k << " survived";
    EXPECT_EQ(srv_->error_log().find("did not stop in time"), std::string::npos)
        << srv_->error_log();
}

// Issue 19 (also): a QUIT sent straight to a worker (not through the supervisor) is a normal
// exit, logged at info: it used to read "[error] ... exited with status 0".
TEST_F(supervision, a_quit_sent_straight_to_a_worker_is_logged_as_a_normal_exit) {
    cfg_.set("workers", "start", "2");
    start();
    ASSERT_TRUE(srv_->wait_workers(2));
    pid_t victim = srv_->workers()[0];
    ::kill(victim, SIGQUIT);
    ASSERT_TRUE(wait_until(
        [&] {
            auto w = srv_->workers();
            return w.size() == 2 && std::find(w.begin(), w.end(), victim) == w.end();
        },
        5s))
        << srv_->error_log();
    ASSERT_TRUE(wait_until(
        [&] {
            return srv_->error_log().find("worker " + std::to_string(victim) + " (") !=
                   std::string::npos;
        },
        2s));
    std::string log = srv_->error_log();
    EXPECT_EQ(log.find("exited with status 0"), std::string::npos) << log;
    EXPECT_NE(log.find("worker " + std::to_string(victim) + " (generation 1, slot"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
}

}  // namespace
}  // namespace preforkd::test
