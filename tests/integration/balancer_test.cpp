// What a load balancer reads: /healthz (200, then 503 while draining), /metrics (passes
// promtool), and TERM with server.shutdown_delay (serving on for the delay, then a stop).
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {
namespace {

using balancer = server_test;

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
