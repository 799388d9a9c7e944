#include "supervisor/scaling.hpp"

#include <gtest/gtest.h>

namespace preforkd {
namespace {

constexpr spare_bounds bounds{/*min_spare=*/1, /*max_spare=*/8, /*max=*/64};

TEST(scaling, below_the_floor_restores_it_at_once) {
    auto d = plan_scaling({/*serving=*/1, /*idle=*/1, /*floor=*/4}, bounds, 1);
    EXPECT_EQ(d.spawn, 3);
    EXPECT_FALSE(d.retire_idle);
}

TEST(scaling, below_the_floor_never_exceeds_max) {
    auto d = plan_scaling({2, 2, 10}, {1, 8, 5}, 1);
    EXPECT_EQ(d.spawn, 3);
}

TEST(scaling, too_few_idle_spawns_the_current_rate_and_doubles_it) {
    auto d = plan_scaling({4, 0, 4}, bounds, 1);
    EXPECT_EQ(d.spawn, 1);
    EXPECT_EQ(d.next_spawn_rate, 2);
    d = plan_scaling({5, 0, 4}, bounds, d.next_spawn_rate);
    EXPECT_EQ(d.spawn, 2);
    EXPECT_EQ(d.next_spawn_rate, 4);
}

TEST(scaling, spawn_rate_caps_at_32) {
    int rate = 1;
    for (int i = 0; i < 10; ++i) rate = plan_scaling({4, 0, 4}, {1, 8, 4096}, rate).next_spawn_rate;
    EXPECT_EQ(rate, 32);
    EXPECT_EQ(plan_scaling({4, 0, 4}, {1, 8, 4096}, rate).spawn, 32);
}

TEST(scaling, shortage_never_spawns_beyond_max) {
    auto d = plan_scaling({63, 0, 4}, bounds, 16);
    EXPECT_EQ(d.spawn, 1);
    d = plan_scaling({64, 0, 4}, bounds, 16);
    EXPECT_EQ(d.spawn, 0);
}

TEST(scaling, the_rate_falls_back_to_1_once_the_shortage_ends) {
    auto d = plan_scaling({8, 2, 4}, bounds, 16);
    EXPECT_EQ(d.spawn, 0);
    EXPECT_EQ(d.next_spawn_rate, 1);
}

TEST(scaling, too_many_idle_retires_one) {
    auto d = plan_scaling({12, 10, 4}, bounds, 1);
    EXPECT_EQ(d.spawn, 0);
    EXPECT_TRUE(d.retire_idle);
}

TEST(scaling, never_retires_below_the_floor) {
    auto d = plan_scaling({10, 10, 10}, bounds, 1);
    EXPECT_FALSE(d.retire_idle);
}

TEST(scaling, idle_within_bounds_does_nothing) {
    auto d = plan_scaling({6, 3, 4}, bounds, 1);
    EXPECT_EQ(d.spawn, 0);
    EXPECT_FALSE(d.retire_idle);
}

TEST(crash_backoff, doubles_from_100ms_and_caps_at_10s) {
    EXPECT_EQ(crash_backoff_ms(0), 0);
    EXPECT_EQ(crash_backoff_ms(1), 100);
    EXPECT_EQ(crash_backoff_ms(2), 200);
    EXPECT_EQ(crash_backoff_ms(3), 400);
    EXPECT_EQ(crash_backoff_ms(7), 6400);
    EXPECT_EQ(crash_backoff_ms(8), 10'000);
    EXPECT_EQ(crash_backoff_ms(1000), 10'000);
}

// Retiring workers count against workers.max, with a small bounded overshoot so that one
// retiring by itself is replaced before it leaves (issue 18.4).
TEST(scaling, retiring_workers_count_against_max_up_to_a_bounded_overshoot) {
    EXPECT_EQ(retiring_overshoot(2), 1);
    EXPECT_EQ(retiring_overshoot(64), 8);
    // max 2: 1 serving + 1 retiring may get one more (3 live), 1 serving + 2 retiring none.
    EXPECT_EQ(room_under_max({1, 0, 2, 1}, 2), 1);
    EXPECT_EQ(room_under_max({1, 0, 2, 2}, 2), 0);
    EXPECT_EQ(room_under_max({0, 0, 2, 30}, 2), 0);
    auto d = plan_scaling({/*serving=*/1, /*idle=*/0, /*floor=*/2, /*retiring=*/5}, {1, 8, 2}, 1);
    EXPECT_EQ(d.spawn, 0);
    d = plan_scaling({1, 0, 2, 0}, {1, 8, 2}, 1);
    EXPECT_EQ(d.spawn, 1);
}

TEST(reload_plan, waits_while_the_new_generation_comes_up) {
    EXPECT_EQ(plan_reload({/*new_up=*/0, /*floor=*/2, /*waited_ms=*/100}), reload_step::wait);
    EXPECT_EQ(plan_reload({1, 2, 100}), reload_step::wait);
}

TEST(reload_plan, finishes_at_the_floor_or_half_up_after_the_patience) {
    EXPECT_EQ(plan_reload({2, 2, 10}), reload_step::finish);
    EXPECT_EQ(plan_reload({1, 2, reload_patience_ms}), reload_step::finish);
}

TEST(reload_plan, abandons_when_nothing_comes_up_in_time) {
    EXPECT_EQ(plan_reload({0, 2, reload_patience_ms}), reload_step::wait);
    EXPECT_EQ(plan_reload({0, 2, reload_give_up_ms}), reload_step::abandon);
    // Another HUP waits: the stalled one is given up at the patience already.
    EXPECT_EQ(plan_reload({0, 2, reload_patience_ms, false, true}), reload_step::abandon);
}

TEST(reload_plan, a_fatal_exit_abandons_at_once) {
    EXPECT_EQ(plan_reload({0, 2, 10, /*fatal=*/true}), reload_step::abandon);
    EXPECT_EQ(plan_reload({1, 2, 10, true}), reload_step::abandon);
}

}  // namespace
}  // namespace preforkd
