// What a worker with open connections counts as on the scoreboard, with the real HTTP
// session (issue 19 item 7): idle keep-alive connections do not make a worker busy while it
// has room for more, so the pool does not grow for them; a request in hand, or no room, does.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "integration/fixture.hpp"
#include "integration/harness.hpp"

namespace preforkd::test {
namespace {

using worker_state_test = server_test;

TEST_F(worker_state_test, idle_keep_alive_connections_leave_a_worker_with_room_a_spare) {
    cfg_.set("workers", "start", "1");
    cfg_.set("workers", "min_spare", "1");
    cfg_.set("workers", "max_spare", "1");
    cfg_.set("workers", "max", "4");
    cfg_.set("workers", "max_connections", "64");
    cfg_.set("http", "keepalive_timeout", "\"30s\"");
    start();
    ASSERT_TRUE(srv_->wait_workers(1));
    std::vector<std::unique_ptr<http_client>> held;
    for (int i = 0; i < 3; ++i) {
        auto c = std::make_unique<http_client>(port_);
        ASSERT_TRUE(c->send("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"));
        ASSERT_TRUE(c->read_response()) << "connection " << i;
        held.push_back(std::move(c));  // open, idle between requests
    }
    // Two maintenance ticks: counted busy, the worker would leave no idle spare (min_spare 1)
    // and the supervisor would fork another.
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(srv_->workers().size(), 1u) << srv_->error_log();
    // The held connections are still served.
    ASSERT_TRUE(held[0]->send("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = held[0]->read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace preforkd::test
