// The decision of `preforkd -s upgrade` at each poll, one case per situation the pid files and
// /proc can show while a binary upgrade runs.
#include "runtime/upgrade_command.hpp"

#include <gtest/gtest.h>

#include "runtime/command_line.hpp"

namespace preforkd {
namespace {

constexpr pid_t old_pid = 100;
constexpr pid_t new_pid = 200;

// The old supervisor before it reads the USR2: its pid file names it, no .oldbin.
upgrade_view before_usr2() {
    upgrade_view v;
    v.old_pid = old_pid;
    v.named = old_pid;
    v.named_alive = true;
    v.named_parent = 1;
    return v;
}

// The new supervisor serves: it wrote its pid, the old one's is in .oldbin.
upgrade_view new_one_ready() {
    upgrade_view v = before_usr2();
    v.named = new_pid;
    v.named_parent = old_pid;
    v.oldbin = old_pid;
    v.handled = true;
    return v;
}

TEST(upgrade_command, waits_while_the_usr2_is_not_handled_yet) {
    EXPECT_EQ(judge_upgrade(before_usr2()).phase, upgrade_phase::waiting);
}

TEST(upgrade_command, waits_while_the_new_binary_starts_without_a_pid_file) {
    upgrade_view v = before_usr2();
    v.named.reset();  // renamed to .oldbin, the new one has not written its own yet
    v.named_alive = false;
    v.oldbin = old_pid;
    v.handled = true;
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::waiting);
}

TEST(upgrade_command, ready_once_the_pid_file_names_the_old_ones_child) {
    auto step = judge_upgrade(new_one_ready());
    EXPECT_EQ(step.phase, upgrade_phase::ready);
    EXPECT_EQ(step.new_pid, new_pid);
}

TEST(upgrade_command, a_pid_file_naming_a_stranger_is_not_the_new_supervisor) {
    upgrade_view v = new_one_ready();
    v.named_parent = 1;  // a server started by someone else, not by this USR2
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::waiting);
    v = new_one_ready();
    v.named_alive = false;  // the new one wrote its pid and died at once
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::waiting);
    v = new_one_ready();
    v.oldbin.reset();  // .oldbin gone: the old one is rolling back
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::waiting);
}

TEST(upgrade_command, fails_when_the_old_one_took_its_pid_file_back) {
    upgrade_view v = before_usr2();
    v.handled = true;         // the pid file went to .oldbin and came back:
    v.original_inode = true;  // the same inode is in place again,
    v.confirmed = true;       // and the previous poll saw the same
    auto step = judge_upgrade(v);
    EXPECT_EQ(step.phase, upgrade_phase::failed);
    EXPECT_NE(step.reason.find("new binary exited"), std::string::npos) << step.reason;
    EXPECT_NE(step.reason.find("100"), std::string::npos) << step.reason;
}

TEST(upgrade_command, fails_when_the_old_supervisor_is_gone) {
    upgrade_view v = before_usr2();
    v.old_alive = false;
    v.named_alive = false;
    auto step = judge_upgrade(v);
    EXPECT_EQ(step.phase, upgrade_phase::failed);
    EXPECT_NE(step.reason.find("exited during the upgrade"), std::string::npos) << step.reason;
}

TEST(upgrade_command, is_a_verb_of_dash_s) {
    auto cl = parse_command_line({"-s", "upgrade"}, "/etc/preforkd/preforkd.toml");
    ASSERT_TRUE(cl);
    EXPECT_EQ(cl->signal, "upgrade");
    EXPECT_NE(usage("preforkd", "/x").find("upgrade"), std::string::npos);
}

// The packaging test once failed a successful upgrade (deb test, 1 run in 4): one poll read
// the pid file (the old pid) and .oldbin (missing) just before the old supervisor renamed it,
// with `handled` already set. What one poll reads is no proof of a rollback.
TEST(upgrade_command, one_poll_read_just_before_the_rename_is_no_rollback) {
    upgrade_view v = before_usr2();
    v.handled = true;         // set by a ctime change, or by an earlier poll
    v.original_inode = true;  // still the original inode: it was not renamed yet
    v.confirmed = false;      // first poll to see this
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::waiting);
}

TEST(upgrade_command, a_pid_file_renamed_between_the_reads_is_no_rollback) {
    upgrade_view v = before_usr2();
    v.handled = true;
    v.original_inode = false;  // the inode changed between the reads (renamed, then a new file)
    v.confirmed = false;
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::waiting);
}

TEST(upgrade_command, a_new_file_naming_the_old_pid_is_no_rollback) {
    // Steady over two polls, but not the inode the old supervisor had: not its rename back.
    upgrade_view v = before_usr2();
    v.handled = true;
    v.original_inode = false;
    v.confirmed = true;
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::waiting);
}

TEST(upgrade_command, a_ready_new_supervisor_wins_over_a_stale_confirmation) {
    upgrade_view v = new_one_ready();
    v.original_inode = false;
    v.confirmed = true;
    EXPECT_EQ(judge_upgrade(v).phase, upgrade_phase::ready);
}

// The deb test's false failure: the pid file's ctime changed in place (no rename: same inode,
// mode, owner, links and mtime) just before the USR2 was handled, so one poll read "the old pid,
// no .oldbin, renamed since". Without the rename seen, only a view held for a while counts.
TEST(upgrade_command, a_ctime_change_alone_is_believed_only_after_the_patience) {
    using namespace std::chrono_literals;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    rollback_watch w;
    EXPECT_FALSE(w.observe(false, true, false, t0));
    EXPECT_FALSE(w.observe(false, true, true, t0 + 20ms));
    EXPECT_FALSE(w.observe(false, true, true, t0 + 990ms));
    EXPECT_TRUE(w.observe(false, true, true, t0 + rollback_watch::ctime_only_patience));
}

TEST(upgrade_command, the_usr2_handled_meanwhile_clears_the_suspicion) {
    using namespace std::chrono_literals;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    rollback_watch w;
    EXPECT_FALSE(w.observe(false, true, false, t0));
    // The next poll sees the pid file renamed to .oldbin: a successful upgrade goes on.
    EXPECT_FALSE(w.observe(true, false, false, t0 + 20ms));
    EXPECT_FALSE(w.observe(false, false, false, t0 + 2s));
}

TEST(upgrade_command, a_rollback_after_the_rename_was_seen_takes_two_polls) {
    using namespace std::chrono_literals;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    rollback_watch w;
    EXPECT_FALSE(w.observe(false, false, false, t0));        // before the USR2 is handled
    EXPECT_FALSE(w.observe(true, false, false, t0 + 20ms));  // .oldbin names the old one
    EXPECT_FALSE(w.observe(false, true, false, t0 + 40ms));  // taken back: first sight
    EXPECT_TRUE(w.observe(false, true, true, t0 + 60ms));    // and again: the verdict
}

TEST(upgrade_command, a_view_that_changes_between_polls_starts_over) {
    using namespace std::chrono_literals;
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    rollback_watch w;
    EXPECT_FALSE(w.observe(true, false, false, t0));
    EXPECT_FALSE(w.observe(false, true, false, t0 + 20ms));
    EXPECT_FALSE(w.observe(false, true, false, t0 + 40ms));  // another identity than before
    EXPECT_TRUE(w.observe(false, true, true, t0 + 60ms));
}

}  // namespace
}  // namespace preforkd
