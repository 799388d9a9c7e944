// read_status() against scoreboards and pid files made here: every answer `--status` can
// give, without a server.
#include "runtime/status_command.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <preforkd/clock.hpp>
#include <preforkd/scoreboard.hpp>

namespace preforkd {
namespace {

struct status_command : ::testing::Test {
    std::filesystem::path dir;
    std::string pid_file;
    status_command() {
        char t[] = "/tmp/preforkd-status-XXXXXX";
        dir = ::mkdtemp(t);
        pid_file = (dir / "server.pid").string();
    }
    ~status_command() override { std::filesystem::remove_all(dir); }
    void write_pid(pid_t pid) const { std::ofstream(pid_file) << pid << "\n"; }
};

TEST_F(status_command, no_pid_file_is_not_running_3) {
    auto r = read_status(pid_file, "preforkd");
    EXPECT_EQ(r.code, status_exit::not_running);
    EXPECT_EQ(r.text, "not running (no pid in " + pid_file + ")");
    EXPECT_EQ(static_cast<int>(r.code), 3);
}

TEST_F(status_command, a_pid_that_is_gone_is_a_stale_pid_file_1) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    write_pid(pid);
    auto r = read_status(pid_file, "echo");
    EXPECT_EQ(r.code, status_exit::stale);
    EXPECT_NE(r.text.find("not running: " + pid_file + " names pid"), std::string::npos) << r.text;
    EXPECT_NE(r.text.find("stale pid file"), std::string::npos) << r.text;
}

TEST_F(status_command, a_live_pid_without_scoreboard_says_so_4) {
    write_pid(::getpid());
    auto r = read_status(pid_file, "preforkd");
    EXPECT_EQ(r.code, status_exit::unknown);
    EXPECT_NE(r.text.find("has no scoreboard"), std::string::npos) << r.text;
}

TEST_F(status_command, the_scoreboard_of_the_pid_is_rendered) {
    write_pid(::getpid());
    auto sb = scoreboard::create_file(4, scoreboard::file_name_for(pid_file, ::getpid()));
    ASSERT_TRUE(sb);
    sb->header().supervisor_pid = ::getpid();
    sb->header().generation = 2;
    sb->header().started_wall_ms = wall_ms() - 5000;
    sb->prepare(0, 2, monotonic_ms());
    sb->slot(0).pid = 4242;
    sb->slot(0).set_state(worker_state::idle);
    sb->slot(0).requests = 17;
    auto r = read_status(pid_file, "preforkd");
    ASSERT_EQ(r.code, status_exit::running) << r.text;
    EXPECT_NE(r.text.find("generation 2"), std::string::npos) << r.text;
    EXPECT_NE(r.text.find("4242"), std::string::npos) << r.text;
    EXPECT_NE(r.text.find("Scoreboard: _\n"), std::string::npos) << r.text;

    // Written by another supervisor than the pid file names: stale, not trusted.
    sb->header().supervisor_pid = 1;
    auto stale = read_status(pid_file, "preforkd");
    EXPECT_EQ(stale.code, status_exit::stale);
    EXPECT_NE(stale.text.find("is stale"), std::string::npos) << stale.text;
}

// USR2 renamed the pid file to .oldbin and the new supervisor has not written its own yet:
// the old one still serves, and is shown.
TEST_F(status_command, during_an_upgrade_the_oldbin_supervisor_is_shown) {
    std::ofstream(pid_file + ".oldbin") << ::getpid() << "\n";
    auto sb = scoreboard::create_file(2, scoreboard::file_name_for(pid_file, ::getpid()));
    ASSERT_TRUE(sb);
    sb->header().supervisor_pid = ::getpid();
    auto r = read_status(pid_file, "preforkd");
    ASSERT_EQ(r.code, status_exit::running) << r.text;
    EXPECT_TRUE(r.text.starts_with("(an upgrade is under way")) << r.text;
    EXPECT_NE(r.text.find("supervisor " + std::to_string(::getpid())), std::string::npos) << r.text;
}

}  // namespace
}  // namespace preforkd
