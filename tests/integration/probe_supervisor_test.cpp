// The supervisor with workers that cannot start, through the blocking probe application
// (apps/blocking_probe.cpp): a reload whose workers never come up (issue 18.2) and a worker
// exiting with exit_code::fatal (issue 13.5), at a reload and at the first start.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "integration/harness.hpp"

namespace preforkd::test {
namespace {

// One line asked on a fresh connection, the answer without its "\n"; "" on failure.
std::string ask(uint16_t port, const std::string& line) {
    int fd = connect_loopback(port);
    if (fd < 0) return "";
    std::string got;
    std::string msg = line + "\n";
    if (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size())) {
        while (got.find('\n') == std::string::npos) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 5000) <= 0) break;
            char buf[256];
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            got.append(buf, static_cast<size_t>(n));
        }
    }
    ::close(fd);
    return got.substr(0, got.find('\n'));
}

class supervisor_probe : public ::testing::Test {
  protected:
    supervisor_probe() : port_(free_port()) {}

    // The probe's configuration: [workers] lines as given, [probe] lines as given.
    std::string render(const std::string& workers, const std::string& probe) const {
        auto q = [](const fs::path& p) { return "\"" + p.string() + "\""; };
        return "[server]\nlisten = [\"127.0.0.1:" + std::to_string(port_) +
               "\"]\npid_file = " + q(dir_.path() / "preforkd.pid") +
               "\n\n[workers]\ngraceful_timeout = \"5s\"\n" + workers +
               "\n[log]\nerror = " + q(dir_.path() / "error.log") +
               "\naccess = \"off\"\nlevel = \"debug\"\n\n[probe]\n" + probe;
    }
    void write(const std::string& workers, const std::string& probe) {
        srv_->write_config(render(workers, probe));
    }
    bool start(const std::string& workers, const std::string& probe,
               const std::vector<std::string>& args = {"-F"}) {
        srv_ = std::make_unique<server>(dir_.path(), port_);
        write(workers, probe);
        return srv_->start(args,
                           {.binary = PREFORKD_BLOCKING_PROBE, .rlimits = {{RLIMIT_CORE, 0}}});
    }
    size_t log_count(const std::string& what) const {
        return count_in_log(srv_->error_log(), what);
    }

    temp_dir dir_;
    uint16_t port_;
    std::unique_ptr<server> srv_;
};

// Issue 18.2: the new generation's workers all die at start, and the old generation's
// workers go (max_requests, a crash, the watchdog: here SIGKILL). They used to be replaced by
// nobody: the pool drained to zero and requests hung. Now the old generation stays at its
// floor until the reload is abandoned, with a line saying why.
TEST_F(supervisor_probe, a_stalled_reload_keeps_the_old_generation_at_its_floor_then_gives_up) {
    ASSERT_TRUE(start("start = 2\n", "tag = \"old\"\n")) << srv_->output();
    ASSERT_TRUE(srv_->wait_workers(2));
    write("start = 2\n", "tag = \"new\"\ncrash_at_start = true\n");
    auto t0 = std::chrono::steady_clock::now();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return log_count("reloading: generation 2") == 1; }, 3s));
    std::this_thread::sleep_for(1200ms);  // the old workers come of age
    // Every worker that lives now is an old one (the new ones die at once): kill them.
    int killed = 0;
    for (int round = 0; round < 3; ++round) {
        for (pid_t p : srv_->workers()) {
            ::kill(p, SIGKILL);
            ++killed;
        }
        std::this_thread::sleep_for(800ms);
        // Still answered, by the old generation.
        EXPECT_EQ(ask(port_, "tag"), "old") << "round " << round << "\n" << srv_->error_log();
    }
    EXPECT_GE(killed, 4);
    ASSERT_TRUE(wait_until([&] { return log_count("reload abandoned") == 1; }, 12s))
        << srv_->error_log();
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 9s);
    EXPECT_LT(took, 13s);
    std::string log = srv_->error_log();
    EXPECT_NE(log.find("reload abandoned, generation 1 stays current: no worker of generation 2 "
                       "came up"),
              std::string::npos)
        << log;
    EXPECT_EQ(ask(port_, "tag"), "old");
    EXPECT_TRUE(srv_->wait_workers(2, 5s));
    // The next reload works, from the generation that serves.
    write("start = 2\n", "tag = \"fixed\"\n");
    srv_->signal(SIGHUP);
    EXPECT_TRUE(wait_until([&] { return log_count("generation 3 serves") == 1; }, 10s))
        << srv_->error_log();
    EXPECT_TRUE(wait_until([&] { return ask(port_, "tag") == "fixed"; }, 5s));
}

// Issue 13.5: a new worker exiting with exit_code::fatal (its init failed) abandons the
// reload at once: no respawning into a configuration that cannot work.
TEST_F(supervisor_probe, a_fatal_exit_at_reload_abandons_it_and_the_old_generation_serves) {
    ASSERT_TRUE(start("start = 2\n", "tag = \"old\"\n")) << srv_->output();
    ASSERT_TRUE(srv_->wait_workers(2));
    write("start = 2\n", "tag = \"new\"\nfatal_at_start = true\n");
    auto t0 = std::chrono::steady_clock::now();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return log_count("reload abandoned") == 1; }, 5s))
        << srv_->error_log();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    std::string log = srv_->error_log();
    EXPECT_NE(log.find("reload abandoned, generation 1 stays current: worker "), std::string::npos)
        << log;
    EXPECT_NE(log.find("of generation 2 cannot start"), std::string::npos) << log;
    EXPECT_NE(log.find("probe: the application cannot start"), std::string::npos) << log;
    // Two forks of generation 2 at most (its start), none after.
    std::this_thread::sleep_for(1500ms);
    EXPECT_LE(count_in_log(srv_->error_log(), "(generation 2, slot"), 6u) << srv_->error_log();
    EXPECT_EQ(ask(port_, "tag"), "old");
    EXPECT_TRUE(srv_->wait_workers(2));
    EXPECT_EQ(srv_->stop(SIGTERM), 0);
}

// Issue 13.5: at the first start, the supervisor exits 1 with the worker's reason.
TEST_F(supervisor_probe, a_fatal_exit_at_first_start_makes_the_start_fail_with_the_reason) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(start("start = 2\n", "fatal_at_start = true\n"));
    EXPECT_EQ(srv_->wait_exit(5s), 1) << srv_->error_log();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
    std::string log = srv_->error_log();
    EXPECT_NE(log.find("[crit]"), std::string::npos) << log;
    EXPECT_NE(log.find("of generation 1 cannot start"), std::string::npos) << log;
    EXPECT_NE(log.find("probe: the application cannot start"), std::string::npos) << log;
    EXPECT_FALSE(fs::exists(dir_.path() / "preforkd.pid"));
}

// The same in daemon mode: the starting command prints why and exits 1.
TEST_F(supervisor_probe, a_fatal_exit_at_first_start_in_daemon_mode_is_printed_by_the_command) {
    srv_ = std::make_unique<server>(dir_.path(), port_);
    write("start = 2\n", "fatal_at_start = true\n");
    auto t0 = std::chrono::steady_clock::now();
    auto r =
        run_binary({"-c", srv_->config_path().string()}, 10s, {.binary = PREFORKD_BLOCKING_PROBE});
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_NE(r.output.find("cannot start"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_.path() / "preforkd.pid"));
}

}  // namespace
}  // namespace preforkd::test
