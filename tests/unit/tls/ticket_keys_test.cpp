#include "tls/ticket_keys.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace preforkd::tls {
namespace {

constexpr int64_t hours = 3600;

bool same(const ticket_key& a, const ticket_key& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(ticket_keys, init_makes_a_random_current_key_and_no_previous) {
    ticket_key_ring a{}, b{};
    ASSERT_TRUE(init_ticket_keys(a, 100));
    ASSERT_TRUE(init_ticket_keys(b, 100));
    EXPECT_FALSE(same(a.current, b.current));
    EXPECT_EQ(a.has_previous, 0u);
    EXPECT_EQ(a.sequence % 2, 0u);
    EXPECT_EQ(find_ticket_key(a, a.current.name), ticket_key_use::current);
    EXPECT_EQ(find_ticket_key(a, b.current.name), ticket_key_use::unknown);
    // An all-zero name must not match the empty previous slot.
    uint8_t zero[16] = {};
    EXPECT_EQ(find_ticket_key(a, zero), ticket_key_use::unknown);
}

TEST(ticket_keys, the_timer_rotates_at_most_every_12_hours) {
    ticket_key_ring r{};
    ASSERT_TRUE(init_ticket_keys(r, 0));
    ticket_key first = r.current;
    EXPECT_FALSE(rotate_ticket_keys(r, 12 * hours - 1, false));
    EXPECT_TRUE(same(r.current, first));
    EXPECT_TRUE(rotate_ticket_keys(r, 12 * hours, false));
    EXPECT_FALSE(same(r.current, first));
    EXPECT_TRUE(same(r.previous, first));
    EXPECT_EQ(r.rotations, 1u);
    EXPECT_FALSE(rotate_ticket_keys(r, 13 * hours, false));
}

TEST(ticket_keys, a_reload_rotates_at_once_and_the_previous_key_still_decrypts) {
    ticket_key_ring r{};
    ASSERT_TRUE(init_ticket_keys(r, 0));
    ticket_key k1 = r.current;
    EXPECT_TRUE(rotate_ticket_keys(r, 60, true));
    ticket_key k2 = r.current;
    EXPECT_EQ(find_ticket_key(r, k1.name), ticket_key_use::previous);
    EXPECT_EQ(find_ticket_key(r, k2.name), ticket_key_use::current);
    // The reload restarted the 12 h clock.
    EXPECT_FALSE(rotate_ticket_keys(r, 60 + 12 * hours - 1, false));
    EXPECT_TRUE(rotate_ticket_keys(r, 120, true));
    EXPECT_EQ(find_ticket_key(r, k1.name), ticket_key_use::unknown);  // two rotations ago
    EXPECT_EQ(find_ticket_key(r, k2.name), ticket_key_use::previous);
    EXPECT_EQ(r.sequence % 2, 0u);
}

TEST(ticket_keys, a_snapshot_is_a_byte_copy_of_a_stable_ring) {
    ticket_key_ring r{};
    ASSERT_TRUE(init_ticket_keys(r, 5));
    ASSERT_TRUE(rotate_ticket_keys(r, 6, true));
    ticket_key_ring copy = snapshot_ticket_keys(r);
    EXPECT_EQ(std::memcmp(&copy, &r, sizeof r), 0);
}

}  // namespace
}  // namespace preforkd::tls
