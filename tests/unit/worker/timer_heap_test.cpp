// The loop's deadline heap: order, moves both ways, removal from anywhere, against a plain
// sorted model over many random operations.
#include "worker/timer_heap.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace preforkd::detail {
namespace {

struct item {
    int64_t timer_at = 0;
    uint32_t timer_pos = 0;
};

TEST(timer_heap, gives_the_earliest_and_follows_moves) {
    std::vector<item> items(3);
    timer_heap<item> h;
    h.reserve(items.size());
    EXPECT_EQ(h.next(), INT64_MAX);
    EXPECT_EQ(h.top(), nullptr);
    h.set(items[0], 30);
    h.set(items[1], 10);
    h.set(items[2], 20);
    EXPECT_EQ(h.top(), &items[1]);
    h.set(items[1], 40);  // later
    EXPECT_EQ(h.top(), &items[2]);
    h.set(items[0], 5);  // earlier
    EXPECT_EQ(h.next(), 5);
    h.remove(items[0]);
    EXPECT_EQ(items[0].timer_at, 0);
    h.remove(items[0]);  // not in it: nothing
    EXPECT_EQ(h.size(), 2u);
    EXPECT_EQ(h.top(), &items[2]);
}

TEST(timer_heap, matches_a_sorted_model_over_random_operations) {
    std::mt19937 rng(42);
    std::vector<item> items(200);
    timer_heap<item> h;
    h.reserve(items.size());
    for (int step = 0; step < 20000; ++step) {
        item& it = items[rng() % items.size()];
        switch (rng() % 3) {
            case 0:
            case 1:
                h.set(it, 1 + static_cast<int64_t>(rng() % 1000));
                break;
            default:
                h.remove(it);
                break;
        }
        int64_t want = INT64_MAX;
        size_t in = 0;
        for (const item& i : items) {
            if (i.timer_at == 0) continue;
            ++in;
            want = std::min(want, i.timer_at);
        }
        ASSERT_EQ(h.size(), in);
        ASSERT_EQ(h.next(), want);
    }
}

}  // namespace
}  // namespace preforkd::detail
