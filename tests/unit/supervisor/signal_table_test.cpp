// The signal table (sys/signals.hpp) is the one place a signal's meaning is written: these
// check what is derived from it.
#include <gtest/gtest.h>

#include "sys/signals.hpp"
#include "worker/signal_watch.hpp"

namespace preforkd {
namespace {

TEST(signal_table, verbs_and_names_come_from_the_table) {
    EXPECT_EQ(sys::signal_for_verb("reload"), SIGHUP);
    EXPECT_EQ(sys::signal_for_verb("stop"), SIGTERM);
    EXPECT_EQ(sys::signal_for_verb("quit"), SIGQUIT);
    EXPECT_EQ(sys::signal_for_verb("reopen"), SIGUSR1);
    EXPECT_FALSE(sys::signal_for_verb(""));
    EXPECT_FALSE(sys::signal_for_verb("restart"));
    EXPECT_EQ(sys::signal_verbs("|"), "stop|quit|reload|reopen");
    EXPECT_EQ(sys::signal_verbs(", ", " or "), "stop, quit, reload or reopen");
    EXPECT_EQ(sys::signal_name(SIGTTIN), "TTIN");
    EXPECT_EQ(sys::signal_name(SIGKILL), "KILL");
    EXPECT_EQ(sys::signal_name(SIGRTMIN + 3), "other");
}

TEST(signal_table, the_supervisor_blocks_exactly_what_it_acts_on) {
    sigset_t set = sys::supervisor_signals();
    for (int s :
         {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGURG})
        EXPECT_EQ(sigismember(&set, s), 1) << s;
    // WINCH has no meaning here: left at its default (ignore), not blocked for nothing.
    EXPECT_EQ(sigismember(&set, SIGWINCH), 0);
    EXPECT_EQ(sigismember(&set, SIGPIPE), 0);
    EXPECT_EQ(sys::supervisor_action_for(SIGHUP), sys::supervisor_action::reload);
    EXPECT_EQ(sys::supervisor_action_for(SIGWINCH), sys::supervisor_action::none);
}

TEST(signal_table, the_worker_blocks_what_its_loop_reads_and_ignores_the_supervisors_own) {
    sigset_t blocked = sys::worker_blocked_signals();
    sigset_t loop = detail::worker_signals();
    for (int s = 1; s < NSIG; ++s)
        EXPECT_EQ(sigismember(&blocked, s), sigismember(&loop, s)) << "signal " << s;
    sigset_t ignored = sys::worker_ignored_signals();
    for (int s : {SIGPIPE, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR2})
        EXPECT_EQ(sigismember(&ignored, s), 1);
    EXPECT_EQ(sigismember(&ignored, SIGTERM), 0);
}

}  // namespace
}  // namespace preforkd
