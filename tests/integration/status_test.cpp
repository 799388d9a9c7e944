// The live views of issue 15 through the real binary: `--status [--watch]` reading the running
// server's scoreboard file, and the HTML status page (Accept negotiation, in headless
// Chromium when it is installed).
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "integration/fixture.hpp"

namespace preforkd::test {
namespace {

using status_view = server_test;

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

fs::path scoreboard_file(const server& s) {
    return s.pid_file().parent_path() / ("scoreboard." + std::to_string(s.pid()));
}

TEST_F(status_view, status_lists_the_live_workers_and_totals_from_the_scoreboard) {
    cfg_.set("workers", "start", "3");
    start();
    ASSERT_TRUE(srv_->wait_workers(3));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(http_get(port_, "/index.html"));
    // Requests are counted by the worker once answered: wait until the view has them all.
    run_result r;
    ASSERT_TRUE(wait_until(
        [&] {
            r = run_binary({"--status", "-c", srv_->config_path().string()});
            return r.status == 0 && r.output.find("\n5 requests") != std::string::npos;
        },
        10s))
        << r.status << "\n"
        << r.output;
    EXPECT_NE(
        r.output.find("preforkd supervisor " + std::to_string(srv_->pid()) + ", generation 1, up "),
        std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("3 workers: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Scoreboard: ___\n"), std::string::npos) << r.output;
    // One row per worker: its pid, generation 1, idle.
    const auto workers = srv_->workers();
    ASSERT_EQ(workers.size(), 3u);
    for (pid_t w : workers) {
        const size_t at = r.output.find(" " + std::to_string(w) + " ");
        ASSERT_NE(at, std::string::npos) << "worker " << w << " missing:\n" << r.output;
        const std::string row = r.output.substr(at, r.output.find('\n', at) - at);
        EXPECT_NE(row.find(" 1 idle "), std::string::npos) << row;
    }
}

TEST_F(status_view, the_scoreboard_file_is_root_and_the_service_group_0640_and_goes_at_exit) {
    start();
    const fs::path f = scoreboard_file(*srv_);
    struct stat st {};
    ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_uid, ::geteuid());
    if (::geteuid() == 0) {
        const passwd* nobody = ::getpwnam("nobody");  // server.user's default
        ASSERT_NE(nobody, nullptr);
        EXPECT_EQ(st.st_gid, nobody->pw_gid);
    }
    ASSERT_EQ(srv_->stop(SIGQUIT), 0);
    EXPECT_FALSE(fs::exists(f)) << "a clean exit removes its scoreboard";
}

TEST_F(status_view, a_stale_scoreboard_of_a_killed_supervisor_is_removed_at_start) {
    start();
    const fs::path first = scoreboard_file(*srv_);
    ASSERT_TRUE(fs::exists(first));
    auto kids = srv_->workers();
    srv_->signal(SIGKILL);
    for (pid_t k : kids) ::kill(k, SIGKILL);
    ASSERT_TRUE(srv_->wait_exit(5s));
    for (pid_t k : kids) ASSERT_TRUE(wait_gone(k, 5s));
    ASSERT_TRUE(fs::exists(first)) << "SIGKILL leaves it behind";
    ASSERT_TRUE(srv_->start({"-F"}));
    EXPECT_FALSE(fs::exists(first));
    EXPECT_TRUE(fs::exists(scoreboard_file(*srv_)));
    EXPECT_GE(count_in_log(srv_->error_log(), "removed 1 stale scoreboard file"), 1u);
}

TEST_F(status_view, watch_redraws_every_second_until_sigint_then_exits_0) {
    start();
    // timeout(1) sends INT after 2.5 s; --preserve-status passes our exit status on.
    spawn_options so;
    so.binary = "/usr/bin/timeout";
    auto r = run_binary({"--preserve-status", "-s", "INT", "2.5", PREFORKD_BINARY, "--status",
                         "--watch", "-c", srv_->config_path().string()},
                        15s, so);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_GE(count_of(r.output, "\x1b[H\x1b[2J"), 2u) << r.output;
    EXPECT_GE(count_of(r.output, "Scoreboard: "), 2u) << r.output;
    // TERM ends it the same way.
    auto t = run_binary({"--preserve-status", "-s", "TERM", "1.5", PREFORKD_BINARY, "--status",
                         "--watch", "-c", srv_->config_path().string()},
                        15s, so);
    EXPECT_EQ(t.status, 0) << t.output;
}

TEST_F(status_view, not_running_and_stale_pid_files_are_clear_errors_with_lsb_codes) {
    prepare();  // the configuration, no server
    auto none = run_binary({"--status", "-c", srv_->config_path().string()});
    EXPECT_EQ(none.status, 3) << none.output;
    EXPECT_NE(
        none.output.find("preforkd: not running (no pid in " + srv_->pid_file().string() + ")"),
        std::string::npos)
        << none.output;
    // A pid file naming a process that is gone.
    pid_t gone = ::fork();
    if (gone == 0) ::_exit(0);
    ::waitpid(gone, nullptr, 0);
    write_file(srv_->pid_file(), std::to_string(gone) + "\n");
    auto stale = run_binary({"--status", "-c", srv_->config_path().string()});
    EXPECT_EQ(stale.status, 1) << stale.output;
    EXPECT_NE(stale.output.find("stale pid file"), std::string::npos) << stale.output;
    // --watch gives up at once too: there is nothing to watch.
    auto watch = run_binary({"--status", "--watch", "-c", srv_->config_path().string()}, 5s);
    EXPECT_EQ(watch.status, 1) << watch.output;
}

TEST_F(status_view, another_user_is_refused_with_permission_denied) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run --status as another user";
    start();
    // The folder is the test's (0700): open it so that only the file's own mode decides.
    fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_read |
                                     fs::perms::group_exec | fs::perms::others_read |
                                     fs::perms::others_exec);
    spawn_options as_daemon;
    as_daemon.uid = 1;  // daemon: neither root nor in the workers' group
    as_daemon.gid = 1;
    auto r = run_binary({"--status", "-c", srv_->config_path().string()}, 10s, as_daemon);
    EXPECT_EQ(r.status, 4) << r.output;
    EXPECT_NE(r.output.find("permission denied: " + scoreboard_file(*srv_).string()),
              std::string::npos)
        << r.output;
    // A member of the workers' group may look.
    spawn_options as_group;
    as_group.uid = 1;
    as_group.gid = ::getpwnam("nobody")->pw_gid;
    auto g = run_binary({"--status", "-c", srv_->config_path().string()}, 10s, as_group);
    EXPECT_EQ(g.status, 0) << g.output;
}

// A binary upgrade leaves one scoreboard per supervisor while both run; --status follows the
// pid file to the new one, and the old one's file goes with it.
TEST_F(status_view, status_follows_a_binary_upgrade_to_the_new_supervisor) {
    start();
    const pid_t old_pid = srv_->pid();
    const fs::path old_file = scoreboard_file(*srv_);
    ASSERT_TRUE(fs::exists(old_file));
    auto up = run_binary({"-s", "upgrade", "-c", srv_->config_path().string()}, 30s);
    EXPECT_EQ(srv_->wait_exit(5s), 0);  // the old supervisor was our child
    const pid_t new_pid = read_pid_file(srv_->pid_file());
    ASSERT_EQ(up.status, 0) << up.output << srv_->error_log();
    ASSERT_GT(new_pid, 0);
    ASSERT_NE(new_pid, old_pid);
    EXPECT_FALSE(fs::exists(old_file)) << "the old supervisor removes its own at exit";
    EXPECT_TRUE(fs::exists(old_file.parent_path() / ("scoreboard." + std::to_string(new_pid))));
    auto r = run_binary({"--status", "-c", srv_->config_path().string()});
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("preforkd supervisor " + std::to_string(new_pid) + ","),
              std::string::npos)
        << r.output;
    // Not our child: stopped by its pid, waited for by polling.
    ::kill(new_pid, SIGTERM);
    EXPECT_TRUE(wait_until([&] { return ::kill(new_pid, 0) != 0; }, 8s));
}

// server.pid_file moved by a reload: the scoreboard moves beside it, where --status looks.
TEST_F(status_view, the_scoreboard_moves_with_a_pid_file_moved_by_reload) {
    start();
    const fs::path moved = dir_.path() / "run" / "moved.pid";
    cfg_.set("server", "pid_file", "\"" + moved.string() + "\"");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return read_pid_file(moved) == srv_->pid(); }, 10s))
        << srv_->error_log();
    const fs::path file = moved.parent_path() / ("scoreboard." + std::to_string(srv_->pid()));
    ASSERT_TRUE(wait_until([&] { return fs::exists(file); }, 5s)) << srv_->error_log();
    EXPECT_FALSE(fs::exists(scoreboard_file(*srv_)));
    auto r = run_binary({"--status", "-c", srv_->config_path().string()});
    EXPECT_EQ(r.status, 0) << r.output;
    ASSERT_EQ(srv_->stop(SIGQUIT), 0);
    EXPECT_FALSE(fs::exists(file));
}

// ---- the HTML page

TEST_F(status_view, browsers_get_html_under_a_strict_csp_curl_keeps_text) {
    start();
    const std::string browser =
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n";
    auto html = http_get(port_, "/server-status", browser);
    ASSERT_TRUE(html);
    EXPECT_EQ(html->status, 200);
    EXPECT_EQ(html->header("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(html->header("vary"), "Accept");
    EXPECT_NE(html->header("content-security-policy").find("script-src 'sha256-"),
              std::string::npos);
    EXPECT_TRUE(html->body.starts_with("<!DOCTYPE html>"));
    EXPECT_NE(html->body.find("data-json=\"/server-status?json\""), std::string::npos);

    auto curl = http_get(port_, "/server-status", "Accept: */*\r\n");
    ASSERT_TRUE(curl);
    EXPECT_EQ(curl->header("content-type"), "text/plain; charset=utf-8");
    EXPECT_EQ(curl->header("vary"), "Accept");
    EXPECT_NE(curl->body.find("Scoreboard: "), std::string::npos);
    EXPECT_TRUE(curl->header("content-security-policy").empty());

    auto forced = http_get(port_, "/server-status?html");
    ASSERT_TRUE(forced);
    EXPECT_EQ(forced->header("content-type"), "text/html; charset=utf-8");
    auto json = http_get(port_, "/server-status?json", browser);
    ASSERT_TRUE(json);
    EXPECT_EQ(json->header("content-type"), "application/json");
    // Two Accept lines are one list (RFC 9110 section 5.3): text/plain;q=0.5 loses to html.
    auto split =
        http_get(port_, "/server-status", "Accept: text/plain;q=0.5\r\nAccept: text/html\r\n");
    ASSERT_TRUE(split);
    EXPECT_EQ(split->header("content-type"), "text/html; charset=utf-8");
}

// Headless Chromium loads the page with its CSP, runs the script (which polls ?json and
// redraws the grid) and dumps the DOM: one cell per live worker.
TEST_F(status_view, chromium_renders_one_cell_per_live_worker) {
    const char* chromium = "/usr/bin/chromium";
    if (::access(chromium, X_OK) != 0)
        GTEST_SKIP() << "chromium is not installed (apt-get install chromium; run_all.sh does)";
    cfg_.set("workers", "start", "3");
    start();
    ASSERT_TRUE(srv_->wait_workers(3));
    // Chromium's sandbox wants an unprivileged user; as root it must go without.
    spawn_options so;
    so.binary = "/usr/bin/timeout";
    so.env = {"HOME=" + dir_.path().string()};
    const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/server-status?html";
    auto r = run_binary({"60", chromium, "--headless", "--no-sandbox", "--disable-gpu",
                         "--user-data-dir=" + (dir_.path() / "chromium").string(),
                         "--virtual-time-budget=3000", "--dump-dom", url},
                        90s, so);
    ASSERT_EQ(r.status, 0) << r.output;
    const size_t body = r.output.find("<body");
    ASSERT_NE(body, std::string::npos) << r.output;
    const std::string dom = r.output.substr(body);
    // The script ran (a CSP refusing it would leave no data-polls) and drew from ?json.
    EXPECT_NE(dom.find("data-polls=\""), std::string::npos) << dom;
    const size_t grid = dom.find("id=\"grid\"");
    ASSERT_NE(grid, std::string::npos) << dom;
    const std::string cells = dom.substr(grid, dom.find("</div>", grid) - grid);
    EXPECT_EQ(count_of(cells, "class=\"cell "), 3u) << cells;
    EXPECT_EQ(count_of(cells, "class=\"cell idle\""), 3u) << cells;
    EXPECT_NE(dom.find("<td>1</td><td>0</td><td>3</td>"), std::string::npos)
        << "generation 1: 0 starting, 3 idle\n"
        << dom;
}

}  // namespace
}  // namespace preforkd::test
