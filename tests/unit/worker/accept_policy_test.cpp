#include "worker/accept_policy.hpp"

#include <gtest/gtest.h>

namespace preforkd::detail {
namespace {

TEST(accept_policy, a_tls_listener_gives_each_handshake_to_whichever_worker_waits) {
    constexpr accept_policy tls = accept_policy_for(true);
    EXPECT_EQ(tls.batch, 1);    // one handshake taken per wake-up
    EXPECT_EQ(tls.turn_ms, 0);  // and at once last in the listener's wake-up order
}

TEST(accept_policy, a_plain_listener_drains_bursts_in_turns) {
    constexpr accept_policy plain = accept_policy_for(false);
    EXPECT_GT(plain.batch, 1);
    EXPECT_GT(plain.turn_ms, 0);
    // A turn is short next to a second, so every waiting worker gets many of them.
    EXPECT_LE(plain.turn_ms, 50);
}

}  // namespace
}  // namespace preforkd::detail
