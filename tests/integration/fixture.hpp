// A started preforkd with a temporary folder, port, config and docroot.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "integration/harness.hpp"

namespace preforkd::test {

class server_test : public ::testing::Test {
  protected:
    server_test() : port_(free_port()), cfg_(dir_.path(), port_) {}

    // Writes the config built so far and starts the server; fails the test if it does not come up.
    void start(const std::vector<std::string>& args = {"-F"}, const spawn_options& so = {}) {
        prepare();
        ASSERT_TRUE(srv_->start(args, so)) << "server did not start; output:\n"
                                           << srv_->output() << "\nerror log:\n"
                                           << srv_->error_log();
    }
    // The same as a daemon (no -F): returns once the binary has, with the daemon's pid; 0,
    // with the failure recorded, if it did not start. The daemon is not our child.
    pid_t start_daemon() {
        prepare();
        auto r = run_binary({"-c", srv_->config_path().string()});
        EXPECT_EQ(r.status, 0) << r.output;
        return r.status == 0 ? read_pid_file(srv_->pid_file()) : 0;
    }
    // `-s stop` to the daemon `pid`: it goes, and takes its pid file with it.
    void stop_daemon(pid_t pid) {
        auto stop = run_binary({"-c", srv_->config_path().string(), "-s", "stop"});
        EXPECT_EQ(stop.status, 0) << stop.output;
        EXPECT_TRUE(wait_gone(pid, 7s));
        EXPECT_FALSE(fs::exists(srv_->pid_file()));
    }
    void rewrite_config() { srv_->write_config(cfg_.render()); }

    // The server object with the config built so far and an index.html.
    void prepare() {
        srv_ = std::make_unique<server>(dir_.path(), port_);
        srv_->write_config(cfg_.render());
        if (!fs::exists(srv_->root() / "index.html"))
            write_file(srv_->root() / "index.html", "<h1>hello</h1>\n");
    }

    temp_dir dir_;
    uint16_t port_;
    config_builder cfg_;
    std::unique_ptr<server> srv_;
};

}  // namespace preforkd::test
