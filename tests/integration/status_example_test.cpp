// `--status` of an embedded application: the echo example has no HTTP status page, and its
// own binary (the engine's command line) shows its scoreboard all the same.
#include "integration/example_fixture.hpp"

namespace preforkd::test {
namespace {

TEST_F(example_test, echo_status_shows_its_workers_from_the_scoreboard) {
    start(PREFORKD_EXAMPLE_ECHO, {{"workers", "start = 2\nmin_spare = 1\nmax_spare = 4\n"}});
    ASSERT_TRUE(srv_->wait_workers(2));
    {
        line_client c(port_);
        ASSERT_EQ(c.ask("hello"), "hello");
    }
    spawn_options so;
    so.binary = PREFORKD_EXAMPLE_ECHO;
    run_result r;
    // The line is counted once answered and the connection closed: wait for the view to see it.
    ASSERT_TRUE(wait_until(
        [&] {
            r = run_binary({"--status", "-c", srv_->config_path().string()}, 10s, so);
            return r.status == 0 && r.output.find("\n1 requests") != std::string::npos;
        },
        10s))
        << r.status << "\n"
        << r.output;
    EXPECT_NE(r.output.find("supervisor " + std::to_string(srv_->pid())), std::string::npos)
        << r.output;
    for (pid_t w : srv_->workers())
        EXPECT_NE(r.output.find(" " + std::to_string(w) + " "), std::string::npos)
            << "worker " << w << " missing:\n"
            << r.output;
    // And the plain preforkd binary reads it just as well: the file is the engine's.
    auto p = run_binary({"--status", "-c", srv_->config_path().string()});
    EXPECT_EQ(p.status, 0) << p.output;
    EXPECT_NE(p.output.find("Scoreboard: "), std::string::npos) << p.output;
}

}  // namespace
}  // namespace preforkd::test
