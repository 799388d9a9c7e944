// sys::pid_file_lock and the start-up path checks: the guard against two servers with one
// pid file, a reload's move of it, and what -t checks of the file system.
#include "sys/pid_file.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/start_check.hpp"

namespace preforkd {
namespace {

namespace fs = std::filesystem;

class temp_folder {
  public:
    temp_folder() {
        std::string t = (fs::temp_directory_path() / "preforkd-unit-XXXXXX").string();
        if (::mkdtemp(t.data())) path_ = t;
    }
    ~temp_folder() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(pid_file_lock, a_second_holder_is_refused_until_the_first_lets_go) {
    temp_folder d;
    std::string path = (d.path() / "run" / "x.pid").string();
    {
        auto first = sys::pid_file_lock::acquire(path, "preforkd");
        ASSERT_TRUE(first) << first.err().message;
        EXPECT_TRUE(fs::exists(path));  // its folder made on the way
        EXPECT_EQ(slurp(path), "");
        // OFD locks conflict between open file descriptions, in one process too.
        auto second = sys::pid_file_lock::acquire(path, "preforkd");
        ASSERT_FALSE(second);
        EXPECT_EQ(second.err().message,
                  "already running (starting up): another preforkd holds the pid file " + path);
        ASSERT_TRUE(sys::write_pid_file(path, 4242));
        second = sys::pid_file_lock::acquire(path, "preforkd");
        ASSERT_FALSE(second);
        EXPECT_EQ(second.err().message,
                  "already running as pid 4242: another preforkd holds the pid file " + path);
        // Written in place: the lock is still on the file the path names.
        EXPECT_EQ(slurp(path), "4242\n");
    }
    // Let go; the file named another pid, so it stays; the next one takes it and empties it.
    EXPECT_TRUE(fs::exists(path));
    auto third = sys::pid_file_lock::acquire(path, "preforkd");
    ASSERT_TRUE(third) << third.err().message;
    EXPECT_EQ(slurp(path), "");
}

TEST(pid_file_lock, a_failed_start_removes_the_empty_file_it_made) {
    temp_folder d;
    std::string path = (d.path() / "x.pid").string();
    { auto lock = sys::pid_file_lock::acquire(path, "preforkd"); }
    EXPECT_FALSE(fs::exists(path));
}

TEST(pid_file_lock, move_to_makes_the_folders_writes_and_lets_the_old_file_go) {
    temp_folder d;
    std::string old_path = (d.path() / "a.pid").string();
    std::string new_path = (d.path() / "new" / "dir" / "b.pid").string();
    auto lock = sys::pid_file_lock::acquire(old_path, "preforkd");
    ASSERT_TRUE(lock);
    ASSERT_TRUE(sys::write_pid_file(old_path, ::getpid()));
    auto r = lock->move_to(new_path, ::getpid(), "preforkd");
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_FALSE(fs::exists(old_path));
    EXPECT_EQ(slurp(new_path), std::to_string(::getpid()) + "\n");
    EXPECT_EQ(lock->path(), new_path);
    EXPECT_FALSE(sys::pid_file_lock::acquire(new_path, "preforkd"));
    EXPECT_TRUE(sys::pid_file_lock::acquire(old_path, "preforkd"));
}

TEST(pid_file_lock, a_move_that_fails_changes_nothing) {
    temp_folder d;
    std::string old_path = (d.path() / "a.pid").string();
    std::ofstream(d.path() / "blocker") << "x";
    auto lock = sys::pid_file_lock::acquire(old_path, "preforkd");
    ASSERT_TRUE(lock);
    ASSERT_TRUE(sys::write_pid_file(old_path, ::getpid()));
    auto r = lock->move_to((d.path() / "blocker" / "b.pid").string(), ::getpid(), "preforkd");
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().message.find("cannot create the folder " + (d.path() / "blocker").string() +
                                   " of pid file"),
              std::string::npos)
        << r.err().message;
    EXPECT_EQ(lock->path(), old_path);
    EXPECT_EQ(slurp(old_path), std::to_string(::getpid()) + "\n");
    EXPECT_FALSE(sys::pid_file_lock::acquire(old_path, "preforkd"));
}

// ---- check_start_paths -------------------------------------------------------------------

result<config> load_in(const temp_folder& d, const std::string& toml) {
    return parse_config(toml, (d.path() / "x.toml").string());
}

std::string start_error(const temp_folder& d, const std::string& toml) {
    auto c = load_in(d, toml);
    EXPECT_TRUE(c) << c.err().message;
    if (!c) return {};
    auto r = check_start_paths(*c);
    return r ? std::string() : r.err().message;
}

TEST(start_paths, logs_must_be_files_in_existing_folders) {
    temp_folder d;
    fs::create_directories(d.path() / "logs");
    const std::string file = (d.path() / "x.toml").string();
    const std::string pid = "[server]\npid_file = \"p.pid\"\n";
    EXPECT_EQ(start_error(d, pid + "[log]\nerror = \"logs/e.log\"\naccess = \"logs/a.log\"\n"), "");
    EXPECT_EQ(start_error(d, pid + "[log]\nerror = \"stderr\"\naccess = \"off\"\n"), "");
    EXPECT_EQ(start_error(d, pid + "[log]\n\nerror = \"logs\"\naccess = \"off\"\n"),
              file + ":5: log.error \"" + (d.path() / "logs").string() +
                  "\" is a folder, not a log file");
    EXPECT_EQ(start_error(d, pid + "[log]\nerror = \"stderr\"\naccess = \"none/a.log\"\n"),
              file + ":5: log.access \"" + (d.path() / "none/a.log").string() + "\": folder \"" +
                  (d.path() / "none").string() + "\" does not exist (start-up does not create it)");
}

TEST(start_paths, a_pid_file_may_be_in_missing_folders_but_not_be_a_folder) {
    temp_folder d;
    const std::string file = (d.path() / "x.toml").string();
    const std::string logs = "[log]\nerror = \"stderr\"\naccess = \"off\"\n";
    EXPECT_EQ(start_error(d, "[server]\npid_file = \"a/b/c.pid\"\n" + logs), "");
    fs::create_directories(d.path() / "run");
    EXPECT_EQ(start_error(d, "[server]\npid_file = \"run\"\n" + logs),
              file + ":2: server.pid_file \"" + (d.path() / "run").string() +
                  "\" is a folder, not a file");
    std::ofstream(d.path() / "f") << "x";
    EXPECT_EQ(start_error(d, "[server]\npid_file = \"f/g/x.pid\"\n" + logs),
              file + ":2: server.pid_file \"" + (d.path() / "f/g/x.pid").string() + "\": \"" +
                  (d.path() / "f").string() + "\" is not a folder");
}

TEST(start_paths, a_unix_socket_needs_its_folder_and_no_other_file_in_its_place) {
    temp_folder d;
    const std::string file = (d.path() / "x.toml").string();
    const std::string rest = "pid_file = \"p.pid\"\n[log]\nerror = \"stderr\"\naccess = \"off\"\n";
    const std::string dir = d.path().string();
    EXPECT_EQ(start_error(d, "[server]\nlisten = [\"unix:" + dir + "/s.sock\"]\n" + rest), "");
    EXPECT_EQ(start_error(d, "[server]\nlisten = [\"127.0.0.1:1\",\n  \"unix:" + dir +
                                 "/no/s.sock\"]\n" + rest),
              file + ":3: server.listen[1] \"unix:" + dir + "/no/s.sock\": folder \"" + dir +
                  "/no\" does not exist (start-up does not create it)");
    std::ofstream(d.path() / "plain") << "x";
    EXPECT_EQ(start_error(d, "[server]\nlisten = [\"unix:" + dir + "/plain\"]\n" + rest),
              file + ":2: server.listen[0] \"unix:" + dir + "/plain\": \"" + dir +
                  "/plain\" exists and is not a socket");
}

}  // namespace
}  // namespace preforkd
