// The session ticket keys a supervisor hands to the binary that replaces it (USR2): the new
// ring starts with the old one's current and previous keys, and the memfd is read only once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "supervisor/tls_setup.hpp"

namespace preforkd {
namespace {

TEST(ticket_handover, the_new_ring_starts_with_the_old_keys) {
    shared_ticket_ring old_ring;
    EXPECT_EQ(old_ring.export_for_upgrade(), -1);  // no ring yet: nothing to hand over
    auto r = old_ring.get(100);
    ASSERT_TRUE(r);
    ASSERT_TRUE(tls::rotate_ticket_keys(**r, 200, true));  // a previous key too
    const tls::ticket_key_ring before = tls::snapshot_ticket_keys(**r);

    const int fd = old_ring.export_for_upgrade();
    ASSERT_GE(fd, 3);
    ::setenv(ticket_keys_env, std::to_string(fd).c_str(), 1);
    shared_ticket_ring new_ring;
    new_ring.take_inherited();
    EXPECT_EQ(::getenv(ticket_keys_env), nullptr);  // taken: a worker never sees it
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);            // and the memfd is closed
    EXPECT_TRUE(new_ring.inherited());
    auto n = new_ring.get(5);
    ASSERT_TRUE(n);
    const tls::ticket_key_ring after = tls::snapshot_ticket_keys(**n);
    EXPECT_EQ(std::memcmp(&after.current, &before.current, sizeof after.current), 0);
    EXPECT_EQ(std::memcmp(&after.previous, &before.previous, sizeof after.previous), 0);
    EXPECT_EQ(after.has_previous, 1u);
    EXPECT_EQ(after.rotated_at, 5);  // the 12 h clock is this process's
    EXPECT_EQ(tls::find_ticket_key(after, before.current.name), tls::ticket_key_use::current);
}

TEST(ticket_handover, without_a_valid_handover_the_keys_are_fresh) {
    ::setenv(ticket_keys_env, "not-a-number", 1);
    shared_ticket_ring a;
    a.take_inherited();
    EXPECT_FALSE(a.inherited());
    ::setenv(ticket_keys_env, "1", 1);  // stdout: not ours to read, and below 3
    a.take_inherited();
    EXPECT_FALSE(a.inherited());
    shared_ticket_ring b;
    auto ra = a.get(1);
    auto rb = b.get(1);
    ASSERT_TRUE(ra && rb);
    EXPECT_NE(std::memcmp(&(*ra)->current, &(*rb)->current, sizeof(tls::ticket_key)), 0);
}

}  // namespace
}  // namespace preforkd
