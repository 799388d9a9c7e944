// Sites: the name lookup (site_finder), the name checks, and [[site]] in a real config file
// with its `file:line: site[N].key` errors.
#include "http/site.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "http/application.hpp"
#include "http/http_config.hpp"
#include "http/static_file.hpp"
#include "http/status_page.hpp"

using namespace preforkd;
using namespace preforkd::http;
namespace fs = std::filesystem;

namespace {

std::vector<site> sites_named(std::vector<std::vector<std::string>> names) {
    std::vector<site> out;
    for (auto& n : names) {
        site s;
        for (const std::string& w : n) s.names.push_back(*canonical_site_name(w));
        out.push_back(std::move(s));
    }
    return out;
}

// sites: 0 example.org/www.example.org, 1 *.example.net, 2 *.b.example.net, 3 [::1],
// 4 a.example.net (exact beats wildcard)
site_finder sample() {
    static const std::vector<site> s = sites_named({{"example.org", "www.example.org"},
                                                    {"*.example.net"},
                                                    {"*.b.example.net"},
                                                    {"[::1]", "127.0.0.1"},
                                                    {"a.example.net"}});
    return site_finder(s);
}

request_head head(std::string_view target, target_form form, std::string_view host,
                  bool has_host = true) {
    request_head h;
    h.target = target;
    h.form = form;
    h.has_host = has_host;
    h.host = host;
    return h;
}

}  // namespace

TEST(site_finder, exact_names) {
    site_finder f = sample();
    EXPECT_EQ(f.find_host("example.org"), 0u);
    EXPECT_EQ(f.find_host("www.example.org"), 0u);
    EXPECT_EQ(f.find_host("a.example.net"), 4u);
}

TEST(site_finder, wildcards_by_longest_suffix) {
    site_finder f = sample();
    EXPECT_EQ(f.find_host("x.example.net"), 1u);
    EXPECT_EQ(f.find_host("x.y.example.net"), 1u);
    EXPECT_EQ(f.find_host("x.b.example.net"), 2u);
    EXPECT_EQ(f.find_host("deep.x.b.example.net"), 2u);
    // "*.example.net" names the subdomains, not example.net itself; nor b.example.net by
    // "*.b.example.net" (it is a subdomain of example.net, though).
    EXPECT_EQ(f.find_host("example.net"), 0u);
    EXPECT_EQ(f.find_host("b.example.net"), 1u);
}

TEST(site_finder, case_port_and_trailing_dot_are_ignored) {
    site_finder f = sample();
    EXPECT_EQ(f.find_host("A.Example.NET"), 4u);
    EXPECT_EQ(f.find_host("a.example.net:8080"), 4u);
    EXPECT_EQ(f.find_host("a.example.net."), 4u);
    EXPECT_EQ(f.find_host("A.EXAMPLE.NET.:443"), 4u);
    EXPECT_EQ(f.find_host("X.B.Example.Net.:80"), 2u);
}

TEST(site_finder, ip_literals) {
    site_finder f = sample();
    EXPECT_EQ(f.find_host("[::1]:8080"), 3u);
    EXPECT_EQ(f.find_host("[::1]"), 3u);
    EXPECT_EQ(f.find_host("127.0.0.1:80"), 3u);
    EXPECT_EQ(f.find_host("[::2]:8080"), 0u);
    EXPECT_EQ(f.find_host("[::1"), 0u);
}

TEST(site_finder, no_match_is_the_first_site) {
    site_finder f = sample();
    EXPECT_EQ(f.find_host("unknown.test"), 0u);
    EXPECT_EQ(f.find_host(""), 0u);
    EXPECT_EQ(f.find_host(std::string(300, 'a')), 0u);
    EXPECT_EQ(f.find_host("net"), 0u);
}

TEST(site_finder, absolute_form_wins_over_host) {
    site_finder f = sample();
    // RFC 9112 section 3.2.2: the target's authority, not Host.
    EXPECT_EQ(f.find(head("http://a.example.net/x", target_form::absolute, "example.org")), 4u);
    EXPECT_EQ(f.find(head("http://user@X.Example.NET:81?q", target_form::absolute, "")), 1u);
    EXPECT_EQ(f.find(head("https://unknown.test/", target_form::absolute, "a.example.net")), 0u);
    EXPECT_EQ(f.find(head("/x", target_form::origin, "a.example.net")), 4u);
}

TEST(site_finder, no_host_on_http_1_0_is_the_first_site) {
    site_finder f = sample();
    EXPECT_EQ(f.find(head("/x", target_form::origin, "", false)), 0u);
}

TEST(site_finder, authority_of_an_absolute_target) {
    EXPECT_EQ(absolute_target_authority("http://h:1/p?q"), "h:1");
    EXPECT_EQ(absolute_target_authority("http://u:p@h/p"), "h");
    EXPECT_EQ(absolute_target_authority("http://h?q"), "h");
    EXPECT_EQ(absolute_target_authority("http://[::1]:8/"), "[::1]:8");
    EXPECT_EQ(absolute_target_authority("nothing"), "");
}

TEST(site_names, canonical_forms_and_bad_names) {
    EXPECT_EQ(*canonical_site_name("Example.ORG."), "example.org");
    EXPECT_EQ(*canonical_site_name("*.Example.net"), "*.example.net");
    EXPECT_EQ(*canonical_site_name("[::1]"), "[::1]");
    EXPECT_EQ(*canonical_site_name("under_score.test"), "under_score.test");
    for (const char* bad : {"", ".", "a..b", ".a", "a b", "a/b", "*", "*.", "a.*.b", "x*.a", "[::1",
                            "[nope]", "a:80", "\xc3\xa9.test"})
        EXPECT_FALSE(canonical_site_name(bad).ok()) << bad;
    EXPECT_FALSE(canonical_site_name(std::string(64, 'a') + ".test").ok());
    EXPECT_TRUE(canonical_site_name(std::string(63, 'a') + ".test").ok());
}

TEST(site_counters, count_per_site_in_shared_memory) {
    site_counters c(3);
    c.bump(1, 0);
    c.bump(1, 17);  // another worker's stripe: summed
    c.bump(2, 3);
    c.bump(7, 0);  // out of range: ignored
    EXPECT_EQ(c.requests(0), 0u);
    EXPECT_EQ(c.requests(1), 2u);
    EXPECT_EQ(c.requests(2), 1u);
    EXPECT_EQ(c.requests(7), 0u);
}

// ---- [[site]] in a config file

class site_config_test : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() /
                ("preforkd-sites-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(base_);
        fs::create_directories(base_ / "a");
        fs::create_directories(base_ / "b");
        std::ofstream(base_ / "file") << "x";
    }
    void TearDown() override { fs::remove_all(base_); }

    result<config> load(const std::string& text) {
        static const application app = make_application();
        return parse_config(text, (base_ / "x.toml").string(), app.schema);
    }
    std::string file() const { return (base_ / "x.toml").string(); }

    fs::path base_;
};

TEST_F(site_config_test, without_sites_http_root_is_the_one_site) {
    auto cfg = load("[http]\nroot = \"a\"\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    const auto& h = cfg->app_settings<http_settings>();
    EXPECT_FALSE(h.sites_configured);
    ASSERT_EQ(h.sites.size(), 1u);
    EXPECT_TRUE(h.sites[0].names.empty());
    EXPECT_EQ(h.sites[0].root, (base_ / "a").string());
    EXPECT_EQ(h.sites[0].root_fd, h.root_fd.get());  // the same descriptor, not a copy
    EXPECT_FALSE(h.sites[0].own_root.valid());
    EXPECT_FALSE(h.site_requests);
}

TEST_F(site_config_test, sites_take_http_values_as_defaults) {
    auto cfg = load(
        "[http]\nroot = \"/nonexistent\"\nindex = [\"home.html\"]\nserve_hidden = true\n"
        "[[site]]\nnames = [\"Example.org.\", \"*.example.net\"]\nroot = \"a\"\n"
        "[[site]]\nnames = [\"other.test\"]\nroot = \"b\"\nindex = [\"i.htm\"]\n"
        "serve_hidden = false\naccess_log = \"b.log\"\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    const auto& h = cfg->app_settings<http_settings>();
    EXPECT_TRUE(h.sites_configured);
    ASSERT_EQ(h.sites.size(), 2u);
    EXPECT_EQ(h.sites[0].names, (std::vector<std::string>{"example.org", "*.example.net"}));
    EXPECT_EQ(h.sites[0].index, std::vector<std::string>{"home.html"});
    EXPECT_TRUE(h.sites[0].serve_hidden);
    EXPECT_FALSE(h.sites[0].access_fd.valid());
    EXPECT_EQ(h.sites[1].index, std::vector<std::string>{"i.htm"});
    EXPECT_FALSE(h.sites[1].serve_hidden);
    EXPECT_EQ(h.sites[1].access_log, (base_ / "b.log").string());
    EXPECT_TRUE(h.sites[1].access_fd.valid());
    EXPECT_TRUE(fs::exists(base_ / "b.log"));
    ASSERT_TRUE(h.site_requests);
    EXPECT_EQ(h.site_requests->size(), 2u);
    EXPECT_EQ(h.finder.find_host("x.example.net"), 0u);
    EXPECT_EQ(h.finder.find_host("OTHER.test:1"), 1u);
}

TEST_F(site_config_test, a_name_claimed_twice_is_an_error) {
    auto cfg = load(
        "[[site]]\nnames = [\"a.test\"]\nroot = \"a\"\n"
        "[[site]]\nroot = \"b\"\nnames = [\"b.test\", \"A.TEST.\"]\n");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.err().message,
              file() + ":6: site[1].names \"a.test\" is already a name of site[0]");
    auto twice = load("[[site]]\nnames = [\"a.test\", \"a.test\"]\nroot = \"a\"\n");
    ASSERT_FALSE(twice.ok());
    EXPECT_EQ(twice.err().message, file() + ":2: site[0].names \"a.test\" is listed twice");
}

TEST_F(site_config_test, a_bad_name_is_an_error) {
    auto cfg = load("[[site]]\nroot = \"a\"\nnames = [\"ok.test\", \"bad name\"]\n");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.err().message.rfind(file() + ":3: site[0].names \"bad name\" is not a host", 0),
              0u)
        << cfg.err().message;
    auto wild = load("[[site]]\nroot = \"a\"\nnames = [\"a.*.test\"]\n");
    ASSERT_FALSE(wild.ok());
    EXPECT_NE(wild.err().message.find("site[0].names \"a.*.test\" may only start with"),
              std::string::npos)
        << wild.err().message;
}

TEST_F(site_config_test, a_missing_root_or_a_file_is_an_error) {
    auto missing =
        load("[[site]]\nnames = [\"a.test\"]\nroot = \"a\"\n[[site]]\nroot = \"nope\"\n");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.err().message, file() + ":5: site[1].root " + (base_ / "nope").string() +
                                         ": No such file or directory");
    auto not_folder = load("[[site]]\nroot = \"file\"\n");
    ASSERT_FALSE(not_folder.ok());
    EXPECT_EQ(not_folder.err().message,
              file() + ":2: site[0].root " + (base_ / "file").string() + ": not a folder");
    // Inherited from [http], the error names the site's table.
    auto inherited = load("[http]\nroot = \"nope\"\n[[site]]\nnames = [\"a.test\"]\n");
    ASSERT_FALSE(inherited.ok());
    EXPECT_EQ(inherited.err().message.rfind(file() + ":3: site[0].root ", 0), 0u)
        << inherited.err().message;
}

TEST_F(site_config_test, http_root_is_not_opened_when_every_site_has_its_own) {
    auto cfg = load("[http]\nroot = \"/nonexistent\"\n[[site]]\nroot = \"a\"\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
}

TEST_F(site_config_test, an_access_log_that_cannot_be_opened_is_an_error) {
    auto cfg = load("[[site]]\nroot = \"a\"\naccess_log = \"/nonexistent/dir/x.log\"\n");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.err().message.rfind(file() + ":3: site[0].access_log ", 0), 0u)
        << cfg.err().message;
}

TEST_F(site_config_test, unknown_and_unmerged_keys_are_errors) {
    // A per-site key nobody reads is unknown, never ignored.
    auto cfg = load("[[site]]\nroot = \"a\"\nautoindx = true\n");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.err().message, file() + ":3: unknown key site[0].autoindx");
    auto typo = load("[[site]]\nroot = \"a\"\n[[site]]\nroot = \"b\"\nnmes = [\"x\"]\n");
    ASSERT_FALSE(typo.ok());
    EXPECT_EQ(typo.err().message, file() + ":5: unknown key site[1].nmes");
}

TEST_F(site_config_test, site_must_be_an_array_of_tables) {
    auto cfg = load("[site]\nroot = \"a\"\n");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.err().message,
              file() + ":1: site must be an array of tables ([[site]]), not a table");
}

TEST_F(site_config_test, wrong_types_name_the_site) {
    auto cfg = load("[[site]]\nroot = \"a\"\n[[site]]\nroot = \"b\"\nserve_hidden = \"yes\"\n");
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.err().message,
              file() + ":5: site[1].serve_hidden must be a boolean (true or false), not a string");
}

TEST_F(site_config_test, the_file_cache_is_keyed_per_site) {
    std::ofstream(base_ / "a" / "index.html") << "site a";
    std::ofstream(base_ / "b" / "index.html") << "site b!";
    std::ofstream(base_ / "b" / "only-b.txt") << "b";
    auto cfg = load("[[site]]\nroot = \"a\"\n[[site]]\nroot = \"b\"\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    file_cache cache(cfg->app_settings<http_settings>());
    EXPECT_EQ(cache.lookup(0, "index.html", 1)->body, "site a");
    EXPECT_EQ(cache.lookup(1, "index.html", 1)->body, "site b!");
    EXPECT_EQ(cache.lookup(0, "", 1)->body, "site a");  // index files per site too
    EXPECT_EQ(cache.lookup(1, "", 1)->body, "site b!");
    EXPECT_EQ(cache.lookup(0, "only-b.txt", 1)->kind, lookup_kind::not_found);
    EXPECT_EQ(cache.lookup(1, "only-b.txt", 1)->kind, lookup_kind::file);
    EXPECT_EQ(cache.size(), 6u);
    // Cached answers stay apart too.
    EXPECT_EQ(cache.lookup(0, "index.html", 1)->body, "site a");
    EXPECT_EQ(cache.lookup(1, "index.html", 1)->body, "site b!");
}

TEST(site_status, text_and_json_list_sites_only_when_configured) {
    status_snapshot snap;
    snap.supervisor_pid = 1;
    std::string text, json;
    render_status_text(snap, "x", text);
    render_status_json(snap, json);
    EXPECT_EQ(text.find("Site:"), std::string::npos);
    EXPECT_EQ(json.find("\"sites\""), std::string::npos);
    snap.sites = {{"a.test", 5}, {"", 2}};
    text.clear();
    json.clear();
    render_status_text(snap, "x", text);
    render_status_json(snap, json);
    EXPECT_NE(text.find("Site: index=0 name=a.test requests=5\nSite: index=1 name=- requests=2\n"),
              std::string::npos)
        << text;
    EXPECT_NE(json.find(" \"sites\": [{\"index\": 0, \"name\": \"a.test\", \"requests\": 5},\n"
                        "            {\"index\": 1, \"name\": \"\", \"requests\": 2}],\n"),
              std::string::npos)
        << json;
}
