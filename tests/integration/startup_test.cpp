// Command line and start-up: -t, -V, bad arguments, bad configs, daemon mode, pid file.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "integration/fixture.hpp"

namespace preforkd::test {
namespace {

using startup = server_test;

TEST(command_line, version_prints_name_and_version) {
    auto r = run_binary({"-V"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.output.rfind("preforkd ", 0), 0u) << r.output;
}

TEST(command_line, help_prints_usage) {
    auto r = run_binary({"-h"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.output.find("usage: preforkd"), std::string::npos) << r.output;
}

TEST(command_line, unknown_argument_is_an_error_with_usage) {
    auto r = run_binary({"--bogus"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("unknown argument --bogus"), std::string::npos) << r.output;
}

TEST(command_line, test_flag_accepts_the_bundled_demo_config) {
    auto r = run_binary({"-t", "-c", std::string(PREFORKD_SOURCE_DIR) + "/etc/demo.toml"});
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("test is successful"), std::string::npos) << r.output;
}

TEST_F(startup, test_flag_rejects_a_broken_config_naming_file_line_and_key) {
    write_file(dir_.path() / "bad.toml", "[workers]\nstart = 4\nmax = 2\n");
    auto file = (dir_.path() / "bad.toml").string();
    auto r = run_binary({"-t", "-c", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find(file + ":3: workers.max"), std::string::npos) << r.output;
}

TEST_F(startup, missing_config_file_is_an_error) {
    auto r = run_binary({"-t", "-c", (dir_.path() / "nope.toml").string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("nope.toml"), std::string::npos) << r.output;
}

TEST_F(startup, start_with_a_broken_config_exits_1_with_the_reason) {
    cfg_.set("workers", "start", "\"lots\"");
    server s(dir_.path(), port_);
    s.write_config(cfg_.render());
    EXPECT_FALSE(s.start());
    EXPECT_EQ(s.wait_exit(5s), 1);
    EXPECT_NE(s.output().find("workers.start"), std::string::npos) << s.output();
}

TEST_F(startup, port_already_in_use_fails_the_start_with_the_reason) {
    start();
    server second(dir_.path() / "second", port_);
    config_builder c2(dir_.path() / "second", port_);
    second.write_config(c2.render());
    EXPECT_FALSE(second.start());
    EXPECT_EQ(second.wait_exit(5s), 1);
    EXPECT_NE(second.output().find(second.config_path().string() +
                                   ":2: server.listen[0] \"127.0.0.1:" + std::to_string(port_) +
                                   "\": Address already in use"),
              std::string::npos)
        << second.output();
}

TEST_F(startup, daemon_mode_returns_once_ready_and_stops_with_signal_stop) {
    cfg_.set("log", "level", "\"info\"");
    write_file(dir_.path() / "www/index.html", "daemon\n");
    // Ready means ready: the pid file exists and requests are served right away.
    pid_t pid = start_daemon();
    ASSERT_GT(pid, 0);
    EXPECT_NE(pid, ::getpid());
    auto resp = http_get(port_, "/index.html");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, "daemon\n");
    // A daemon has no controlling terminal and is not our child.
    auto info = read_proc(pid);
    ASSERT_TRUE(info);
    EXPECT_NE(info->ppid, ::getpid());

    stop_daemon(pid);
}

bool sys_is_running(pid_t pid) { return ::kill(pid, 0) == 0; }

// A loopback TCP socket listening on a port of its own: that port is taken.
struct busy_listener {
    int fd = -1;
    uint16_t port = 0;
    busy_listener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sin;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), len) == 0 && ::listen(fd, 1) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0)
            port = ntohs(sin.sin_port);
    }
    ~busy_listener() { ::close(fd); }
};

// Not our child: should a check fail, the daemon must not outlive the test (its workers
// follow it, PR_SET_PDEATHSIG).
struct kill_at_exit {
    pid_t pid;
    ~kill_at_exit() {
        if (pid > 0 && ::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
    }
};

TEST_F(startup, a_daemon_started_with_a_relative_config_path_reloads_and_upgrades) {
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(cfg_.render());
    write_file(srv_->root() / "index.html", "daemon\n");
    // From the config's folder, as `cd /etc/preforkd && preforkd -c preforkd.toml` would.
    auto r = run_binary({"-c", "cd '" + dir_.path().string() + "' && exec " +
                                   std::string(PREFORKD_BINARY) + " -c preforkd.toml"},
                        10s, {.binary = "/bin/sh"});
    ASSERT_EQ(r.status, 0) << r.output;
    pid_t pid = std::atoi(read_file(srv_->pid_file()).c_str());
    ASSERT_GT(pid, 0);
    kill_at_exit guard{pid};

    // HUP re-reads the file by its absolute path, although the daemon runs in "/".
    cfg_.set("workers", "start", "3");
    rewrite_config();
    ::kill(pid, SIGHUP);
    EXPECT_TRUE(wait_until(
        [&] { return count_in_log(srv_->error_log(), "generation 2 starts 3 worker(s)") == 1; },
        5s))
        << srv_->error_log();
    EXPECT_EQ(count_in_log(srv_->error_log(), "cannot read"), 0u) << srv_->error_log();

    // USR2: the new binary gets the absolute path too, and comes up.
    ::kill(pid, SIGUSR2);
    pid_t new_pid = 0;
    EXPECT_TRUE(wait_until(
        [&] {
            new_pid = std::atoi(read_file(srv_->pid_file()).c_str());
            return new_pid > 0 && new_pid != pid;
        },
        8s))
        << srv_->error_log();
    kill_at_exit new_guard{new_pid};
    ::kill(pid, SIGQUIT);
    EXPECT_TRUE(wait_until([&] { return ::kill(pid, 0) != 0; }, 10s));
    auto resp = http_get(port_, "/index.html");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, "daemon\n");
    auto stop = run_binary({"-c", srv_->config_path().string(), "-s", "stop"});
    EXPECT_EQ(stop.status, 0) << stop.output;
    EXPECT_TRUE(wait_until([&] { return new_pid <= 0 || ::kill(new_pid, 0) != 0; }, 7s));
}

TEST_F(startup, a_daemon_start_up_error_is_prefixed_with_the_program_name) {
    // Taken by a first server: the daemon's bind fails after it has detached.
    start();
    temp_dir other;
    config_builder c2(other.path(), port_);
    server second(other.path(), port_);
    second.write_config(c2.render());
    auto r = run_binary({"-c", second.config_path().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.output.rfind("preforkd: " + second.config_path().string() +
                                 ":2: server.listen[0] \"127.0.0.1:" + std::to_string(port_) +
                                 "\": Address already in use",
                             0),
              0u)
        << r.output;
}

TEST_F(startup, signal_stop_works_after_the_docroot_is_deleted) {
    pid_t pid = start_daemon();
    ASSERT_GT(pid, 0);
    kill_at_exit guard{pid};
    // http.root is gone: the file no longer loads as a whole (-t says so), but -s needs only
    // server.pid_file.
    fs::remove_all(srv_->root());
    EXPECT_EQ(run_binary({"-t", "-c", srv_->config_path().string()}).status, 1);
    auto reopen = run_binary({"-c", srv_->config_path().string(), "-s", "reopen"});
    EXPECT_EQ(reopen.status, 0) << reopen.output;
    stop_daemon(pid);
}

TEST_F(startup, signal_with_an_unreadable_or_broken_file_is_a_clear_error) {
    auto missing = (dir_.path() / "nope.toml").string();
    auto r = run_binary({"-c", missing, "-s", "stop"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("preforkd: cannot read " + missing + ": No such file or directory"),
              std::string::npos)
        << r.output;
    auto broken = (dir_.path() / "broken.toml").string();
    write_file(broken, "[server]\npid_file = \"x.pid\"\n[[[\n");
    r = run_binary({"-c", broken, "-s", "stop"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("preforkd: " + broken + ":3: "), std::string::npos) << r.output;
}

TEST_F(startup, an_unknown_user_is_reported_with_file_line_and_key) {
    // Root or not, the name is unknown before anything else is asked about it.
    cfg_.set("server", "user", "\"no-such-user-xyz\"");
    std::string toml = cfg_.render();
    size_t at = toml.find("user = ");
    ASSERT_NE(at, std::string::npos);
    auto line = std::count(toml.begin(), toml.begin() + static_cast<std::ptrdiff_t>(at), '\n') + 1;
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(toml);
    std::string want = "preforkd: " + srv_->config_path().string() + ":" + std::to_string(line) +
                       ": server.user no-such-user-xyz: no such user\n";
    auto t = run_binary({"-t", "-c", srv_->config_path().string()});
    EXPECT_EQ(t.status, 1);
    EXPECT_EQ(t.output, want);
    // Starting says the same (the supervisor resolves the user when it builds its generation).
    auto f = run_binary({"-F", "-c", srv_->config_path().string()});
    EXPECT_EQ(f.status, 1);
    EXPECT_NE(f.output.find(want), std::string::npos) << f.output;
}

TEST_F(startup, signal_without_a_running_server_is_a_clear_error) {
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(cfg_.render());
    auto r = run_binary({"-c", srv_->config_path().string(), "-s", "reload"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("is preforkd running?"), std::string::npos) << r.output;
}

TEST_F(startup, a_stale_pid_file_does_not_prevent_the_start) {
    srv_ = std::make_unique<server>(dir_.path(), port_);
    // A pid that is certainly not a running preforkd: our own test process.
    write_file(srv_->pid_file(), std::to_string(::getpid()) + "\n");
    start();
    EXPECT_EQ(read_pid_file(srv_->pid_file()), srv_->pid());
}

TEST_F(startup, a_second_instance_with_the_same_pid_file_refuses_to_start) {
    start();
    temp_dir other;
    config_builder c2(other.path(), free_port());
    c2.set("server", "pid_file", "\"" + srv_->pid_file().string() + "\"");
    server second(other.path(), 0);
    second.write_config(c2.render());
    auto r = run_binary({"-F", "-c", second.config_path().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("already running as pid " + std::to_string(srv_->pid())),
              std::string::npos)
        << r.output;
}

TEST_F(startup, of_two_daemons_started_at_once_with_one_pid_file_exactly_one_runs) {
    // Two configs, two ports, one pid file: the old check-then-write guard let both run.
    temp_dir a_dir, b_dir;
    fs::path pid_file = dir_.path() / "shared.pid";
    std::vector<std::unique_ptr<server>> servers;
    for (auto* d : {&a_dir, &b_dir}) {
        config_builder c(d->path(), free_port());
        c.set("server", "pid_file", "\"" + pid_file.string() + "\"");
        servers.push_back(std::make_unique<server>(d->path(), 0));
        servers.back()->write_config(c.render());
    }
    run_result results[2];
    {
        std::thread ta([&] {
            results[0] = run_binary({"-c", servers[0]->config_path().string()});
        });
        std::thread tb([&] {
            results[1] = run_binary({"-c", servers[1]->config_path().string()});
        });
        ta.join();
        tb.join();
    }
    pid_t pid = std::atoi(read_file(pid_file).c_str());
    kill_at_exit guard{pid};
    int ok = (results[0].status == 0) + (results[1].status == 0);
    EXPECT_EQ(ok, 1) << results[0].output << "\n" << results[1].output;
    const run_result& loser = results[0].status == 0 ? results[1] : results[0];
    EXPECT_EQ(loser.status, 1);
    EXPECT_EQ(loser.output.rfind("preforkd: already running", 0), 0u) << loser.output;
    EXPECT_NE(loser.output.find("another preforkd holds the pid file " + pid_file.string()),
              std::string::npos)
        << loser.output;
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(sys_is_running(pid));
    // The winner's workers do not hold the lock: only the supervisor does.
    for (pid_t w : children_of(pid)) {
        bool holds = false;
        for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(w) + "/fd")) {
            std::error_code ec;
            if (fs::read_symlink(e.path(), ec) == pid_file) holds = true;
        }
        EXPECT_FALSE(holds) << "worker " << w << " holds the pid file open";
    }
    ::kill(pid, SIGTERM);
    EXPECT_TRUE(wait_until([&] { return ::kill(pid, 0) != 0; }, 7s));
    EXPECT_FALSE(fs::exists(pid_file));
}

TEST_F(startup, a_failed_start_leaves_no_pid_file_behind) {
    busy_listener busy;
    cfg_.set("server", "listen",
             "[\"127.0.0.1:" + std::to_string(port_) +
                 "\", \"127.0.0.1:" + std::to_string(busy.port) + "\"]");
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(cfg_.render());
    auto r = run_binary({"-F", "-c", srv_->config_path().string()});
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_FALSE(fs::exists(srv_->pid_file()));
}

TEST_F(startup, a_reload_moves_the_pid_file_into_a_new_folder_and_stop_finds_it) {
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(cfg_.render());
    write_file(srv_->root() / "index.html", "daemon\n");
    auto r = run_binary({"-c", srv_->config_path().string()});
    ASSERT_EQ(r.status, 0) << r.output;
    pid_t pid = std::atoi(read_file(srv_->pid_file()).c_str());
    ASSERT_GT(pid, 0);
    kill_at_exit guard{pid};

    fs::path moved = dir_.path() / "new" / "run" / "preforkd.pid";
    cfg_.set("server", "pid_file", "\"" + moved.string() + "\"");
    rewrite_config();
    ::kill(pid, SIGHUP);
    EXPECT_TRUE(wait_until([&] { return std::atoi(read_file(moved).c_str()) == pid; }, 5s))
        << srv_->error_log();
    EXPECT_TRUE(wait_until([&] { return !fs::exists(srv_->pid_file()); }, 2s));

    // The same file's -s finds the daemon at the new place, and it takes the file away.
    auto stop = run_binary({"-c", srv_->config_path().string(), "-s", "stop"});
    EXPECT_EQ(stop.status, 0) << stop.output;
    EXPECT_TRUE(wait_until([&] { return ::kill(pid, 0) != 0; }, 7s));
    EXPECT_FALSE(fs::exists(moved));
    EXPECT_FALSE(fs::exists(srv_->pid_file()));
}

TEST_F(startup, a_reload_that_cannot_move_the_pid_file_keeps_it_and_says_why) {
    start();
    // A file where the new folder should be: the folder cannot be made.
    write_file(dir_.path() / "blocker", "x");
    fs::path moved = dir_.path() / "blocker" / "preforkd.pid";
    cfg_.set("server", "pid_file", "\"" + moved.string() + "\"");
    cfg_.set("workers", "start", "3");
    rewrite_config();
    // -t already says no: the reload refuses the same way, and nothing changes.
    auto t = run_binary({"-t", "-c", srv_->config_path().string()});
    EXPECT_EQ(t.status, 1);
    EXPECT_NE(t.output.find("server.pid_file"), std::string::npos) << t.output;
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reload failed") != std::string::npos; }, 5s))
        << srv_->error_log();
    EXPECT_EQ(std::atoi(read_file(srv_->pid_file()).c_str()), srv_->pid());
    auto stop = run_binary({"-c", srv_->config_path().string(), "-s", "stop"});
    EXPECT_EQ(stop.status, 1) << "-s reads the file's new pid_file, which was never written";
    EXPECT_EQ(srv_->stop(), 0);
    EXPECT_FALSE(fs::exists(srv_->pid_file()));
}

TEST_F(startup, a_reload_onto_a_pid_file_another_process_holds_keeps_the_old_one) {
    start();
    // Another server's pid file, locked as preforkd locks it.
    fs::path theirs = dir_.path() / "other" / "preforkd.pid";
    fs::create_directories(theirs.parent_path());
    write_file(theirs, "");
    int fd = ::open(theirs.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    ASSERT_EQ(::fcntl(fd, F_OFD_SETLK, &fl), 0);
    cfg_.set("server", "pid_file", "\"" + theirs.string() + "\"");
    rewrite_config();
    srv_->signal(SIGHUP);
    EXPECT_TRUE(wait_until(
        [&] { return srv_->error_log().find("the pid file stays") != std::string::npos; }, 5s))
        << srv_->error_log();
    EXPECT_NE(srv_->error_log().find("another preforkd holds the pid file " + theirs.string()),
              std::string::npos)
        << srv_->error_log();
    EXPECT_EQ(std::atoi(read_file(srv_->pid_file()).c_str()), srv_->pid());
    EXPECT_EQ(read_file(theirs), "");
    // At exit the server removes the file it kept, and leaves the other one alone.
    EXPECT_EQ(srv_->stop(), 0);
    EXPECT_FALSE(fs::exists(srv_->pid_file()));
    EXPECT_TRUE(fs::exists(theirs));
    ::close(fd);
}

}  // namespace
}  // namespace preforkd::test
