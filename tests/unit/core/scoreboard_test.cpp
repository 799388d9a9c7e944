#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <preforkd/scoreboard.hpp>
#include <string>
#include <thread>
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

// What a reader adds up: the retired sums plus every live slot.
traffic_counters total_of(const scoreboard& sb) {
    traffic_counters t;
    sb.read_consistent([&] {
        t = sb.header().load_retired();
        for (uint32_t i = 0; i < sb.used(); ++i)
            if (sb.slot(i).get_state() != worker_state::empty) t += sb.slot(i).load_counters();
    });
    return t;
}

TEST(scoreboard, release_folds_a_reaped_workers_counters_into_the_retired_sums) {
    auto sb = scoreboard::create(4);
    ASSERT_TRUE(sb);
    sb->prepare(1, 1, 10);
    scoreboard_slot& s = sb->slot(1);
    s.set_state(worker_state::idle);
    scoreboard_slot::bump(s.requests, 5);
    scoreboard_slot::bump(s.bytes, 500);
    scoreboard_slot::bump(s.accepted, 2);
    scoreboard_slot::bump(s.responses[1], 4);
    scoreboard_slot::bump(s.responses[3], 1);
    scoreboard_slot::bump(s.tls_handshakes, 2);
    scoreboard_slot::bump(s.tls_resumed, 1);
    scoreboard_slot::bump(s.tls_failures, 3);
    scoreboard_slot::bump(s.proxy_rejected, 6);
    const traffic_counters before = total_of(*sb);
    EXPECT_EQ(before.requests, 5u);
    const uint64_t seq = sb->header().counters_seq.load();
    sb->release(1);
    EXPECT_EQ(sb->header().counters_seq.load(), seq + 2);  // one write section, closed
    const traffic_counters r = sb->header().load_retired();
    EXPECT_EQ(r.requests, 5u);
    EXPECT_EQ(r.bytes, 500u);
    EXPECT_EQ(r.accepted, 2u);
    EXPECT_EQ(r.responses, (std::array<uint64_t, 5>{0, 4, 0, 1, 0}));
    EXPECT_EQ(r.tls_handshakes, 2u);
    EXPECT_EQ(r.tls_resumed, 1u);
    EXPECT_EQ(r.tls_failures, 3u);
    EXPECT_EQ(r.proxy_rejected, 6u);
    // The slot is empty and zero: reused, it starts from nothing, and the total holds.
    EXPECT_EQ(s.requests.load(), 0u);
    EXPECT_EQ(s.responses[1].load(), 0u);
    const traffic_counters after = total_of(*sb);
    EXPECT_EQ(after.requests, 5u);
    EXPECT_EQ(after.responses, before.responses);
    sb->prepare(1, 2, 20);
    scoreboard_slot::bump(s.requests, 1);
    EXPECT_EQ(total_of(*sb).requests, 6u);
    sb->release(1);
    EXPECT_EQ(sb->header().load_retired().requests, 6u);
}

TEST(scoreboard, a_reader_overlapping_a_write_section_reads_again) {
    auto sb = scoreboard::create(2);
    ASSERT_TRUE(sb);
    sb->prepare(0, 1, 10);
    sb->slot(0).set_state(worker_state::idle);
    scoreboard_slot::bump(sb->slot(0).requests, 3);
    int reads = 0;
    uint64_t seen = 0;
    const bool consistent = sb->read_consistent([&] {
        ++reads;
        seen = sb->header().load_retired().requests;
        // The supervisor folds the slot between our two reads: this attempt must not stand.
        if (reads == 1) sb->release(0);
        if (sb->slot(0).get_state() != worker_state::empty) seen += sb->slot(0).requests.load();
    });
    EXPECT_TRUE(consistent);
    EXPECT_EQ(reads, 2);
    EXPECT_EQ(seen, 3u);  // the attempt would have said 0: counted in neither place
}

TEST(scoreboard, a_reader_gives_up_on_a_write_section_that_never_ends) {
    auto sb = scoreboard::create(2);
    ASSERT_TRUE(sb);
    sb->header().counters_seq.store(7);  // odd: a supervisor that died while folding
    int reads = 0;
    EXPECT_FALSE(sb->read_consistent([&] { ++reads; }));
    EXPECT_EQ(reads, scoreboard::max_read_attempts);
}

// A supervisor thread reaping and refilling slots as fast as it can, while workers count
// in them and a reader sums: the reader's total never goes down, never counts a folded
// slot twice, and ends exactly at what was counted.
TEST(scoreboard, totals_never_go_down_while_slots_are_folded_and_reused) {
    // Quiet slots first, busy ones last: a reader spends a while between reading the retired
    // sums and reading the busy slots, which is where a fold must not fall unnoticed.
    constexpr uint32_t capacity = 64, busy = 3;
    auto sb = scoreboard::create(capacity);
    ASSERT_TRUE(sb);
    constexpr int wanted_checks = 20000;
    constexpr uint32_t min_rounds = 50000;
    for (uint32_t i = 0; i < capacity; ++i) {
        sb->prepare(i, 1, 0);
        sb->slot(i).set_state(worker_state::idle);
    }
    std::atomic<bool> done{false};
    std::atomic<int> checks{0};
    uint64_t counted = 0;  // the supervisor thread's, read after join()
    std::thread supervisor([&] {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        for (uint32_t r = 0; checks.load() < wanted_checks || r < min_rounds; ++r) {
            if ((r & 255) == 0 && std::chrono::steady_clock::now() > until) break;
            const uint32_t i = capacity - 1 - r % busy;
            // The "worker" of slot i counts a few requests and exits; the supervisor folds
            // its slot and refills it.
            for (int k = 0; k < 8; ++k) {
                scoreboard_slot::bump(sb->slot(i).requests, 1);
                scoreboard_slot::bump(sb->slot(i).responses[1], 1);
                ++counted;
            }
            sb->release(i);
            sb->prepare(i, 1, r);
            sb->slot(i).set_state(worker_state::idle);
        }
        done.store(true);
    });
    traffic_counters last;
    int went_down = 0;
    while (!done.load()) {
        const traffic_counters t = total_of(*sb);
        // Counted in neither place (retired sums read before a fold, slot read after), or
        // in both, shows as a total that goes down at the next look.
        if (t.requests < last.requests || t.responses[1] < last.responses[1]) ++went_down;
        last = t;
        checks.fetch_add(1);
    }
    supervisor.join();
    EXPECT_GT(checks.load(), 100);
    EXPECT_EQ(went_down, 0) << "of " << checks.load();
    EXPECT_EQ(total_of(*sb).requests, counted);
    EXPECT_EQ(total_of(*sb).responses[1], counted);
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
