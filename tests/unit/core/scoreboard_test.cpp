#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <preforkd/scoreboard.hpp>

namespace preforkd {
namespace {

TEST(scoreboard, slots_written_by_a_child_are_seen_by_the_parent) {
    auto sb = scoreboard::create(8);
    ASSERT_TRUE(sb);
    sb->prepare(3, 7, 1000);
    pid_t pid = ::fork();
    if (pid == 0) {
        auto& s = sb->slot(3);
        scoreboard_slot::bump(s.requests, 41);
        scoreboard_slot::bump(s.requests, 1);
        s.set_state(worker_state::busy);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_EQ(sb->slot(3).requests.load(), 42u);
    EXPECT_EQ(sb->slot(3).get_state(), worker_state::busy);
    EXPECT_EQ(sb->slot(3).generation.load(), 7u);
}

TEST(scoreboard, prepare_resets_a_reused_slot_and_raises_the_high_water_mark) {
    auto sb = scoreboard::create(16);
    ASSERT_TRUE(sb);
    EXPECT_EQ(sb->used(), 0u);
    sb->prepare(5, 1, 10);
    EXPECT_EQ(sb->used(), 6u);
    scoreboard_slot::bump(sb->slot(5).bytes, 100);
    sb->slot(5).set_state(worker_state::idle);
    sb->release(5);
    EXPECT_EQ(sb->slot(5).get_state(), worker_state::empty);
    sb->prepare(5, 2, 20);
    EXPECT_EQ(sb->slot(5).bytes.load(), 0u);
    EXPECT_EQ(sb->slot(5).generation.load(), 2u);
    EXPECT_EQ(sb->slot(5).get_state(), worker_state::starting);
    EXPECT_EQ(sb->slot(5).heartbeat_ms.load(), 20);
    EXPECT_EQ(sb->used(), 6u);  // reuse does not grow it
}

TEST(scoreboard, a_large_reservation_costs_only_touched_slots) {
    auto sb = scoreboard::create(4096);
    ASSERT_TRUE(sb);
    EXPECT_EQ(sb->capacity(), 4096u);
    EXPECT_EQ(sb->used(), 0u);
}

// Each worker writes its own slot: slots never share a cache line (no false sharing between
// workers), and the fields written on every loop turn stay in the slot's first line; the
// fatal-exit reason, written once at exit, follows them.
TEST(scoreboard, slots_never_share_a_cache_line) {
    EXPECT_EQ(alignof(scoreboard_slot), 64u);
    EXPECT_EQ(sizeof(scoreboard_slot) % 64, 0u);
    EXPECT_LE(offsetof(scoreboard_slot, started_ms) + sizeof(int64_t), 64u);
    EXPECT_EQ(offsetof(scoreboard_slot, exit_reason), 64u);
}

}  // namespace
}  // namespace preforkd
