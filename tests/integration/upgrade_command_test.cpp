// `preforkd -s upgrade` with the real binary: the whole swap under load, the rollback when the
// new binary cannot start, and no server to upgrade. Each load scenario prints its figures.
#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "integration/fixture.hpp"
#include "integration/load.hpp"

namespace preforkd::test {
namespace {

using upgrade_command = server_test;

const std::string page(4096, 'u');

pid_t pid_in(const fs::path& file) { return std::atoi(read_file(file).c_str()); }

// The new supervisor is no child of the test: stopped by its pid, waited for by polling.
void stop_by_pid(pid_t pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    EXPECT_TRUE(wait_until([&] { return ::kill(pid, 0) != 0; }, 8s)) << "pid " << pid;
}

TEST_F(upgrade_command, swaps_the_supervisor_under_load_without_a_failed_request) {
    write_file(dir_.path() / "www/index.html", page);
    start();
    const pid_t old_pid = srv_->pid();
    load_generator load({.port = port_,
                         .expected_body = page,
                         .threads = 2,
                         .keep_alive = false,
                         .duration = 3000ms});
    load.start();
    std::this_thread::sleep_for(300ms);
    auto t0 = std::chrono::steady_clock::now();
    auto up = run_binary({"-s", "upgrade", "-c", srv_->config_path().string()}, 30s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    auto r = load.wait();
    // The old supervisor was our child: reap it (the command saw it as a zombie, hence gone).
    EXPECT_EQ(srv_->wait_exit(5s), 0);
    const pid_t new_pid = pid_in(srv_->pid_file());
    std::printf("[figures] preforkd -s upgrade under load: %llu requests, %llu failed, %lld ms\n",
                static_cast<unsigned long long>(r.requests),
                static_cast<unsigned long long>(r.failed), static_cast<long long>(took.count()));
    for (const auto& s : r.samples) std::printf("[figures]   failure: %s\n", s.c_str());
    EXPECT_EQ(up.status, 0) << up.output << srv_->error_log();
    EXPECT_NE(up.output.find("sent USR2"), std::string::npos) << up.output;
    EXPECT_NE(up.output.find("serves after"), std::string::npos) << up.output;
    EXPECT_NE(up.output.find("exited"), std::string::npos) << up.output;
    EXPECT_EQ(r.failed, 0u);
    EXPECT_GT(r.requests, 50u);
    EXPECT_GT(new_pid, 0);
    EXPECT_NE(new_pid, old_pid);
    EXPECT_FALSE(fs::exists(srv_->pid_file().string() + ".oldbin"));
    EXPECT_FALSE(children_of(new_pid).empty());
    auto resp = http_get(port_, "/index.html");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
    stop_by_pid(new_pid);
}

TEST_F(upgrade_command, a_new_binary_that_cannot_start_leaves_the_old_one_serving) {
    start();
    const pid_t old_pid = srv_->pid();
    // The new binary reads the file again and refuses it; -s upgrade itself reads only
    // server.pid_file, which is still there.
    cfg_.set("workers", "no_such_key", "1");
    rewrite_config();
    auto t0 = std::chrono::steady_clock::now();
    auto up = run_binary({"-s", "upgrade", "-c", srv_->config_path().string()}, 40s);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(up.status, 1) << up.output;
    EXPECT_NE(up.output.find("upgrade failed"), std::string::npos) << up.output;
    EXPECT_NE(up.output.find("serves on"), std::string::npos) << up.output;
    // Seen when the old one takes its pid file back, not at the 30 s limit.
    EXPECT_LT(took, 10s) << up.output;
    EXPECT_EQ(::kill(old_pid, 0), 0);
    EXPECT_EQ(pid_in(srv_->pid_file()), old_pid);
    auto resp = http_get(port_, "/index.html");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
    EXPECT_NE(srv_->error_log().find("this supervisor carries on"), std::string::npos);
}

TEST_F(upgrade_command, says_so_when_no_server_runs) {
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(cfg_.render());
    auto up = run_binary({"-s", "upgrade", "-c", srv_->config_path().string()});
    EXPECT_EQ(up.status, 1);
    EXPECT_NE(up.output.find("is preforkd running?"), std::string::npos) << up.output;
}

TEST_F(upgrade_command, refuses_while_another_upgrade_is_under_way) {
    start();
    const pid_t old_pid = srv_->pid();
    srv_->signal(SIGUSR2);
    pid_t new_pid = 0;
    ASSERT_TRUE(wait_until(
        [&] {
            new_pid = pid_in(srv_->pid_file());
            return new_pid > 0 && new_pid != old_pid;
        },
        8s));
    auto up = run_binary({"-s", "upgrade", "-c", srv_->config_path().string()});
    EXPECT_EQ(up.status, 1);
    EXPECT_NE(up.output.find("already under way"), std::string::npos) << up.output;
    stop_by_pid(new_pid);
}

}  // namespace
}  // namespace preforkd::test
