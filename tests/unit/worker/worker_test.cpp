// run_worker() in a forked child: a worker that cannot start its service exits with
// exit_code::fatal and leaves the reason in its scoreboard slot for the supervisor (issue 13
// item 5).
#include "worker/worker.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <preforkd/application.hpp>
#include <preforkd/exit_code.hpp>
#include <preforkd/scoreboard.hpp>
#include <stdexcept>
#include <string>

#include "core/worker_start.hpp"

namespace preforkd {
namespace {

// Runs `app` in a worker in a child process; its exit status and slot 0's exit reason.
std::pair<int, std::string> run_in_child(const application& app) {
    config cfg;
    scoreboard board = scoreboard::create(1).value();  // MAP_SHARED: the child writes, we read
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(2);  // the crit line is not the test's output
        worker_start ws;
        ws.cfg = &cfg;
        ws.board = &board;
        ws.slot = 0;
        ws.supervisor = ::getppid();
        ::_exit(run_worker(ws, app));
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string(board.slot(0).exit_reason)};
}

// workers.rlimit_nofile = 0: the default 512 connections want more than a shell's 1024.
TEST(worker, automatic_descriptor_limit_fits_max_connections) {
    EXPECT_EQ(nofile_for_connections(512), 1088u);
    EXPECT_EQ(nofile_for_connections(1), 66u);
    EXPECT_GT(nofile_for_connections(512), 1024u);
}

TEST(worker, a_service_that_cannot_start_is_a_fatal_exit_with_its_reason_in_the_slot) {
    application app;
    app.make_service = [](worker_context&) -> std::unique_ptr<service> {
        throw std::runtime_error("docroot /nowhere is gone");
    };
    auto [status, reason] = run_in_child(app);
    EXPECT_EQ(status, static_cast<int>(exit_code::fatal));
    EXPECT_EQ(reason, "cannot start the service: docroot /nowhere is gone");

    app.make_service = [](worker_context&) -> std::unique_ptr<service> { return nullptr; };
    std::tie(status, reason) = run_in_child(app);
    EXPECT_EQ(status, static_cast<int>(exit_code::fatal));
    EXPECT_NE(reason.find("cannot start the service"), std::string::npos) << reason;
}

}  // namespace
}  // namespace preforkd
