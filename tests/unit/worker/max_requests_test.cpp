#include "worker/max_requests.hpp"

#include <gtest/gtest.h>

#include <set>

namespace preforkd::detail {
namespace {

TEST(max_requests_jitter, zero_means_never) { EXPECT_EQ(jittered_max_requests(0, 1234), 0u); }

TEST(max_requests_jitter, stays_within_ten_percent_and_spreads) {
    std::set<uint64_t> seen;
    for (uint64_t pid = 1000; pid < 1200; ++pid) {
        uint64_t v = jittered_max_requests(1000, pid);
        EXPECT_GE(v, 900u);
        EXPECT_LE(v, 1100u);
        seen.insert(v);
    }
    // Consecutive pids must not land on the same few values.
    EXPECT_GT(seen.size(), 100u);
}

TEST(max_requests_jitter, small_limits_stay_positive) {
    for (uint64_t pid = 1; pid < 100; ++pid) {
        EXPECT_GE(jittered_max_requests(1, pid), 1u);
        EXPECT_LE(jittered_max_requests(50, pid), 55u);
        EXPECT_GE(jittered_max_requests(50, pid), 45u);
    }
}

}  // namespace
}  // namespace preforkd::detail
