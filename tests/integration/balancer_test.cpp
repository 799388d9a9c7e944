// What a load balancer reads: /healthz (200, then 503 while draining), /metrics (passes
// promtool), and TERM with server.shutdown_delay (serving on for the delay, then a stop).
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {
namespace {

using balancer = server_test;

// A scrape's samples: "name{labels}" -> value (comments skipped).
std::map<std::string, double> samples_of(const std::string& body) {
    std::map<std::string, double> out;
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const size_t sp = line.rfind(' ');
        out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    }
    return out;
}

// promtool's verdict on `body`: "" when it passes, else what it said.
std::string promtool_complaints(const std::string& promtool, const fs::path& dir,
                                const std::string& body) {
    const fs::path out = dir / "metrics.txt";
    std::ofstream(out) << body;
    const std::string cmd = promtool + " check metrics < " + out.string() + " > " +
                            (dir / "promtool.out").string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream in(dir / "promtool.out");
    std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (rc != 0 && said.empty()) said = "promtool exit status " + std::to_string(rc);
    return rc == 0 ? said : "FAILED: " + said;
}

TEST_F(balancer, metrics_pass_promtool_after_some_requests) {
    const std::string promtool = find_program("promtool");
    if (promtool.empty()) GTEST_SKIP() << "promtool (Debian package prometheus) not installed";
    start();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(http_get(port_, "/"));
    auto m = http_get(port_, "/metrics");
    ASSERT_TRUE(m);
    ASSERT_EQ(m->status, 200);
    EXPECT_NE(m->header("content-type").find("version=0.0.4"), std::string::npos);
    EXPECT_NE(m->body.find("preforkd_requests_total"), std::string::npos) << m->body;
    const fs::path out = dir_.path() / "metrics.txt";
    std::ofstream(out) << m->body;
    const std::string cmd = promtool + " check metrics < " + out.string() + " > " +
                            (dir_.path() / "promtool.out").string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream in(dir_.path() / "promtool.out");
    std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(rc, 0) << said << "\n" << m->body;
}

// Issue 15.2: counters never go down. A worker killed with -9 and a reload (its generation's
// workers retire and are reaped) take their counts with them unless the supervisor folds
// them into the scoreboard's retired sums; the crash and the reload are counted themselves.
TEST_F(balancer, metrics_counters_never_go_down_across_a_crash_and_a_reload) {
    const std::string promtool = find_program("promtool");
    start();
    ASSERT_TRUE(srv_->wait_workers(2));
    int requests_since = 0;  // answered after the first scrape was rendered
    auto scrape = [&] {
        auto m = http_get(port_, "/metrics");
        EXPECT_TRUE(m && m->status == 200);
        ++requests_since;
        return m ? samples_of(m->body) : std::map<std::string, double>{};
    };
    for (int i = 0; i < 6; ++i) ASSERT_EQ(http_get(port_, "/")->status, 200);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(http_get(port_, "/no-such-file")->status, 404);
    const auto before = scrape();
    requests_since = 1;  // the first scrape itself is counted after its render
    EXPECT_GE(before.at("preforkd_requests_total"), 9);
    EXPECT_GE(before.at("preforkd_responses_total{class=\"2xx\"}"), 6);
    EXPECT_EQ(before.at("preforkd_responses_total{class=\"4xx\"}"), 3);
    EXPECT_GE(before.at("preforkd_accepted_connections_total"), 9);
    EXPECT_EQ(before.at("preforkd_worker_crashes_total"), 0);
    EXPECT_EQ(before.at("preforkd_reloads_total"), 0);

    // Every worker has served some of those: kill one of them with -9.
    const std::vector<pid_t> first = srv_->workers();
    ASSERT_FALSE(first.empty());
    ASSERT_EQ(::kill(first[0], SIGKILL), 0);
    std::map<std::string, double> now;
    ASSERT_TRUE(wait_until(
        [&] {
            now = scrape();
            return now["preforkd_worker_crashes_total"] >= 1;
        },
        10s))
        << srv_->error_log();
    // A reload: generation 2 comes up, generation 1's workers retire and are reaped.
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] {
            now = scrape();
            double old = 0;
            for (const auto& [k, v] : now)
                if (k.starts_with("preforkd_workers{") && k.find("generation=\"1\"") != k.npos)
                    old += v;
            return now["preforkd_reloads_total"] >= 1 && old == 0 &&
                   now["preforkd_generation"] == 2;
        },
        15s))
        << srv_->error_log();
    for (const pid_t p : first) EXPECT_TRUE(wait_gone(p, 5s));

    auto last = http_get(port_, "/metrics");
    ASSERT_TRUE(last);
    const auto after = samples_of(last->body);
    for (const auto& [name, value] : before) {
        if (name.find("_total") == std::string::npos) continue;
        ASSERT_TRUE(after.count(name)) << name;
        EXPECT_GE(after.at(name), value) << name << " went down\n" << last->body;
    }
    // Nothing lost, nothing twice: every request is counted exactly once, the killed and
    // the retired workers' ones included.
    EXPECT_EQ(after.at("preforkd_requests_total"),
              before.at("preforkd_requests_total") + requests_since)
        << last->body;
    EXPECT_EQ(after.at("preforkd_responses_total{class=\"2xx\"}"),
              before.at("preforkd_responses_total{class=\"2xx\"}") + requests_since);
    EXPECT_EQ(after.at("preforkd_responses_total{class=\"4xx\"}"), 3);
    // The -9 is a crash; generation 1's workers, retired by the reload, are not.
    EXPECT_EQ(after.at("preforkd_worker_crashes_total"), 1);
    EXPECT_EQ(after.at("preforkd_reloads_total"), 1);
    EXPECT_EQ(after.at("preforkd_fork_failures_total"), 0);
    EXPECT_EQ(after.at("preforkd_generation"), 2);
    EXPECT_GE(after.at("preforkd_uptime_seconds"), 0);
    EXPECT_TRUE(after.count("preforkd_open_connections"));
    EXPECT_GE(after.at("preforkd_workers{state=\"idle\",generation=\"2\"}") +
                  after.at("preforkd_workers{state=\"busy\",generation=\"2\"}"),
              1);
    // The status page's totals agree, and carry the supervisor's counters too.
    auto status = http_get(port_, "/server-status?json");
    ASSERT_TRUE(status);
    EXPECT_NE(status->body.find("\"reloads\": 1, "), std::string::npos) << status->body;
    EXPECT_NE(status->body.find("\"worker_crashes\": 1, \"fork_failures\": 0, "), std::string::npos)
        << status->body;
    // promtool on real output after 2xx and 4xx responses, a crash and a reload.
    if (promtool.empty()) GTEST_SKIP() << "promtool (Debian package prometheus) not installed";
    EXPECT_EQ(promtool_complaints(promtool, dir_.path(), last->body), "") << last->body;
}

TEST_F(balancer, health_is_ok_while_serving) {
    start();
    auto h = http_get(port_, "/healthz");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(h->body, "ok\n");
}

TEST_F(balancer, term_with_shutdown_delay_serves_on_with_health_503_then_exits_0) {
    cfg_.set("server", "shutdown_delay", "\"2s\"");
    start();
    ASSERT_EQ(http_get(port_, "/healthz")->status, 200);
    const auto t0 = std::chrono::steady_clock::now();
    srv_->signal(SIGTERM);
    std::this_thread::sleep_for(300ms);
    auto h = http_get(port_, "/healthz");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 503);
    EXPECT_EQ(h->body, "draining\n");
    // Keep-alive is refused while draining: the client goes back through the balancer.
    raw_result kept = send_raw(port_, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, 500ms);
    ASSERT_EQ(kept.responses.size(), 1u);
    EXPECT_EQ(kept.responses[0].status, 200);
    EXPECT_EQ(kept.responses[0].header("connection"), "close");
    // New connections are still served during the delay.
    for (int i = 0; i < 5; ++i) {
        auto r = http_get(port_, "/");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        std::this_thread::sleep_for(200ms);
    }
    auto status = srv_->wait_exit(10s);
    const auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    EXPECT_GE(took, 1900ms);
    EXPECT_FALSE(http_get(port_, "/"));  // the listener is gone
}

}  // namespace
}  // namespace preforkd::test
