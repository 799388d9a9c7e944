// Sites ([[site]], issue 16): requests reach the site their Host (or absolute target) names,
// each site's own access log, per-site counts on the status page, and a bad [[site]] that
// -t refuses and a reload leaves without effect.
#include <signal.h>

#include <thread>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {

namespace {

class sites : public server_test {
  protected:
    // Site 0 "a.test" (www-a), site 1 "b.test" + "*.b.test" (www-b, its own log b.log).
    std::string sites_toml(const std::string& extra_b = "") const {
        auto q = [](const fs::path& p) { return "\"" + p.string() + "\""; };
        return cfg_.render() +
               "\n[[site]]\nnames = [\"a.test\"]\nroot = " + q(dir_.path() / "www-a") +
               "\n\n[[site]]\nnames = [\"b.test\", \"*.b.test\"]\nroot = " +
               q(dir_.path() / "www-b") + "\naccess_log = " + q(b_log()) + "\n" + extra_b;
    }
    fs::path b_log() const { return dir_.path() / "b.log"; }

    void start_sites() {
        write_file(dir_.path() / "www-a" / "index.html", "site A\n");
        write_file(dir_.path() / "www-b" / "index.html", "site B\n");
        prepare();
        srv_->write_config(sites_toml());
        ASSERT_TRUE(srv_->start({"-F"})) << srv_->output() << srv_->error_log();
    }

    // The body of "GET `target`" with the given Host line ("" = none) over HTTP/1.`minor`.
    std::string body_for(const std::string& target, const std::string& host, int minor = 1) {
        std::string req = "GET " + target + " HTTP/1." + std::to_string(minor) + "\r\n";
        if (!host.empty()) req += "Host: " + host + "\r\n";
        req += "Connection: close\r\n\r\n";
        auto r = send_raw(port_, req, false, 3s);
        if (r.responses.size() != 1 || r.responses[0].status != 200) return "?";
        return r.responses[0].body;
    }
};

}  // namespace

TEST_F(sites, host_picks_the_site_and_an_unknown_host_gets_the_first) {
    start_sites();
    EXPECT_EQ(body_for("/", "a.test"), "site A\n");
    EXPECT_EQ(body_for("/", "b.test"), "site B\n");
    EXPECT_EQ(body_for("/", "B.Test.:" + std::to_string(port_)), "site B\n");
    EXPECT_EQ(body_for("/", "deep.x.b.test"), "site B\n");
    EXPECT_EQ(body_for("/", "nobody.test"), "site A\n");
    EXPECT_EQ(body_for("/", "127.0.0.1:" + std::to_string(port_)), "site A\n");
    EXPECT_EQ(body_for("/", "", 0), "site A\n");  // HTTP/1.0 without Host
    // RFC 9112 section 3.2.2: an absolute-form target's host wins over Host.
    EXPECT_EQ(body_for("http://b.test/index.html", "a.test"), "site B\n");
    EXPECT_EQ(body_for("http://a.test:81/", "b.test"), "site A\n");
}

TEST_F(sites, each_site_logs_to_its_own_file_and_usr1_reopens_it) {
    start_sites();
    EXPECT_EQ(body_for("/?to-a", "a.test"), "site A\n");
    EXPECT_EQ(body_for("/?to-b", "b.test"), "site B\n");
    ASSERT_TRUE(wait_until([&] { return count_access_lines(*srv_, "to-a") == 1; }, 3s));
    ASSERT_TRUE(
        wait_until([&] { return read_file(b_log()).find("to-b") != std::string::npos; }, 3s));
    EXPECT_EQ(count_access_lines(*srv_, "to-b"), 0u);
    EXPECT_EQ(read_file(b_log()).find("to-a"), std::string::npos);

    // logrotate: rename, then USR1. Workers reopen at their own pace: ask until a line lands
    // in the new file (bounded), and the renamed file gets nothing after that.
    fs::rename(b_log(), dir_.path() / "b.log.1");
    srv_->signal(SIGUSR1);
    int n = 0;
    EXPECT_TRUE(wait_until(
        [&] {
            body_for("/?after-" + std::to_string(n++), "b.test");
            return fs::exists(b_log()) && read_file(b_log()).find("after-") != std::string::npos;
        },
        8s))
        << srv_->error_log();
    EXPECT_EQ(read_file(dir_.path() / "b.log.1").find("to-a"), std::string::npos);
    EXPECT_EQ(srv_->error_log().find("USR1: "), std::string::npos) << srv_->error_log();
}

TEST_F(sites, the_status_page_counts_requests_per_site) {
    start_sites();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(body_for("/", "x.b.test"), "site B\n");
    EXPECT_EQ(body_for("/", "a.test"), "site A\n");
    auto text = http_get(port_, "/server-status");
    ASSERT_TRUE(text);
    EXPECT_NE(text->body.find("Site: index=1 name=b.test requests=3\n"), std::string::npos)
        << text->body;
    auto json = http_get(port_, "/server-status?json");
    ASSERT_TRUE(json);
    EXPECT_NE(json->body.find("{\"index\": 1, \"name\": \"b.test\", \"requests\": 3}"),
              std::string::npos)
        << json->body;
    auto parsed = parse_json(json->body);
    EXPECT_TRUE(parsed) << json->body;
}

TEST_F(sites, a_bad_site_is_refused_by_t_and_by_a_reload_that_changes_nothing) {
    start_sites();
    ASSERT_TRUE(srv_->wait_workers(2));
    const auto before = srv_->workers();
    // b.test claimed twice: -t names the file, the line and site[2].names.
    srv_->write_config(sites_toml("\n[[site]]\nnames = [\"B.TEST\"]\n"));
    auto t = run_binary({"-t", "-c", srv_->config_path().string()});
    EXPECT_EQ(t.status, 1);
    EXPECT_NE(t.output.find(srv_->config_path().string() + ":"), std::string::npos) << t.output;
    EXPECT_NE(t.output.find("site[2].names \"b.test\" is already a name of site[1]"),
              std::string::npos)
        << t.output;
    srv_->signal(SIGHUP);
    EXPECT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reload failed") != std::string::npos; }, 5s));
    EXPECT_NE(srv_->error_log().find("site[2].names"), std::string::npos) << srv_->error_log();
    // A root that is a file: refused the same way.
    srv_->write_config(
        sites_toml("\n[[site]]\nroot = \"" + (dir_.path() / "b.log").string() + "\"\n"));
    srv_->signal(SIGHUP);
    EXPECT_TRUE(
        wait_until([&] { return srv_->error_log().find("site[2].root") != std::string::npos; }, 5s))
        << srv_->error_log();
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(srv_->workers(), before);
    EXPECT_EQ(body_for("/", "b.test"), "site B\n");
    EXPECT_EQ(body_for("/", "a.test"), "site A\n");
}

}  // namespace preforkd::test
