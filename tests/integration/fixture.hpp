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
    void start(const std::vector<std::string>& args = {"-F"}) {
        srv_ = std::make_unique<server>(dir_.path(), port_);
        srv_->write_config(cfg_.render());
        if (!fs::exists(srv_->root() / "index.html"))
            write_file(srv_->root() / "index.html", "<h1>hello</h1>\n");
        ASSERT_TRUE(srv_->start(args)) << "server did not start; output:\n"
                                       << srv_->output() << "\nerror log:\n"
                                       << srv_->error_log();
    }
    void rewrite_config() { srv_->write_config(cfg_.render()); }

    temp_dir dir_;
    uint16_t port_;
    config_builder cfg_;
    std::unique_ptr<server> srv_;
};

}  // namespace preforkd::test
