#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <preforkd/scoreboard.hpp>
#include <string>
#include <vector>

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

// A folder of its own for the file-backed scoreboards.
struct scratch_dir {
    std::filesystem::path path;
    scratch_dir() {
        char t[] = "/tmp/preforkd-sb-XXXXXX";
        path = ::mkdtemp(t);
    }
    ~scratch_dir() { std::filesystem::remove_all(path); }
    std::string pid_file() const { return (path / "server.pid").string(); }
};

// A pid that belonged to a process that is gone now.
pid_t dead_pid() {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

TEST(scoreboard_file, another_process_reads_what_the_creator_and_its_children_write) {
    scratch_dir d;
    const std::string path = scoreboard::file_name_for(d.pid_file(), ::getpid());
    EXPECT_EQ(path, (d.path / ("scoreboard." + std::to_string(::getpid()))).string());
    auto sb = scoreboard::create_file(8, path);
    ASSERT_TRUE(sb) << sb.err().message;
    EXPECT_EQ(sb->path(), path);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    sb->header().supervisor_pid = ::getpid();
    sb->prepare(2, 5, 100);
    pid_t child = ::fork();
    if (child == 0) {  // a worker: writes its slot, and its copy must not remove the file
        sb->slot(2).set_state(worker_state::busy);
        scoreboard_slot::bump(sb->slot(2).requests, 7);
        sb->~scoreboard();
        ::_exit(std::filesystem::exists(path) ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "a worker's copy removed the file";
    ASSERT_TRUE(std::filesystem::exists(path));

    auto view = scoreboard::open_read_only(path);
    ASSERT_TRUE(view) << view.err().message;
    EXPECT_EQ(view->capacity(), 8u);
    EXPECT_EQ(view->used(), 3u);
    EXPECT_EQ(view->header().supervisor_pid.load(), ::getpid());
    EXPECT_EQ(view->slot(2).get_state(), worker_state::busy);
    EXPECT_EQ(view->slot(2).requests.load(), 7u);
    EXPECT_EQ(view->slot(2).generation.load(), 5u);
    // Live: a later write shows through the reader's mapping.
    sb->slot(2).set_state(worker_state::idle);
    EXPECT_EQ(view->slot(2).get_state(), worker_state::idle);

    sb = scoreboard();  // the creator's scoreboard goes: so does its file
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(scoreboard_file, a_file_of_another_layout_is_refused_with_a_reason) {
    scratch_dir d;
    const std::string path = (d.path / "scoreboard.1").string();
    { std::ofstream(path) << std::string(4096, 'x'); }
    auto junk = scoreboard::open_read_only(path);
    ASSERT_FALSE(junk);
    EXPECT_NE(junk.err().message.find("not a scoreboard"), std::string::npos) << junk.err().message;
    {
        std::ofstream(path, std::ios::trunc);  // empty: the creator is still setting it up
    }
    auto empty = scoreboard::open_read_only(path);
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.err().message.find("still being set up"), std::string::npos);

    auto sb = scoreboard::create_file(4, path);
    ASSERT_TRUE(sb);
    // Another version: the slot size in the header differs (bytes 16..19).
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint32_t other = 8;
    ASSERT_EQ(::pwrite(fd, &other, sizeof other, 16), 4);
    auto wrong = scoreboard::open_read_only(path);
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.err().message.find("another version"), std::string::npos)
        << wrong.err().message;
    // Cut short: the sizes no longer add up.
    other = sizeof(scoreboard_slot);
    ASSERT_EQ(::pwrite(fd, &other, sizeof other, 16), 4);
    ASSERT_TRUE(scoreboard::open_read_only(path));
    ASSERT_EQ(::ftruncate(fd, 4096), 0);
    auto cut = scoreboard::open_read_only(path);
    ASSERT_FALSE(cut);
    EXPECT_NE(cut.err().message.find("do not add up"), std::string::npos) << cut.err().message;
    ::close(fd);

    auto missing = scoreboard::open_read_only((d.path / "scoreboard.2").string());
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.err().code, std::errc::no_such_file_or_directory);
}

TEST(scoreboard_file, stale_files_of_dead_processes_go_live_ones_stay) {
    scratch_dir d;
    const pid_t dead = dead_pid();
    for (const std::string& name : std::vector<std::string>{
             "scoreboard." + std::to_string(dead), "scoreboard.1", "scoreboard.x", "other.3"})
        std::ofstream(d.path / name) << "x";
    EXPECT_EQ(scoreboard::remove_stale_files(d.pid_file()), 1);
    EXPECT_FALSE(std::filesystem::exists(d.path / ("scoreboard." + std::to_string(dead))));
    EXPECT_TRUE(std::filesystem::exists(d.path / "scoreboard.1"));  // init lives
    EXPECT_TRUE(std::filesystem::exists(d.path / "scoreboard.x"));
    EXPECT_TRUE(std::filesystem::exists(d.path / "other.3"));
}

TEST(scoreboard_file, moves_with_the_pid_file) {
    scratch_dir d;
    std::filesystem::create_directory(d.path / "new");
    auto sb = scoreboard::create_file(2, scoreboard::file_name_for(d.pid_file(), ::getpid()));
    ASSERT_TRUE(sb);
    const std::string to =
        scoreboard::file_name_for((d.path / "new/server.pid").string(), ::getpid());
    ASSERT_TRUE(sb->move_file(to));
    EXPECT_TRUE(std::filesystem::exists(to));
    EXPECT_EQ(sb->path(), to);
    sb = scoreboard();
    EXPECT_FALSE(std::filesystem::exists(to));
}

}  // namespace
}  // namespace preforkd
