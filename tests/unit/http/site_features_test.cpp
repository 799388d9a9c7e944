// The per-site features (issue 16): each [[site]] reads the site rules and content codings
// with [http]'s values as defaults, its problems named `file:line: site[N].key`, and the file
// cache answers each site from its own root with its own codings.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "http/application.hpp"
#include "http/http_config.hpp"
#include "http/site.hpp"
#include "http/static_file.hpp"

using namespace preforkd;
using namespace preforkd::http;
namespace fs = std::filesystem;

class site_features_test : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() /
                ("preforkd-site-features-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(base_);
        fs::create_directories(base_ / "a");
        fs::create_directories(base_ / "b");
        fs::create_directories(base_ / "cache");
    }
    void TearDown() override { fs::remove_all(base_); }

    result<config> load(const std::string& text) {
        static const application app = make_application();
        return parse_config(text, file(), app.schema);
    }
    std::string file() const { return (base_ / "x.toml").string(); }
    // The error starts with "file:line: what" (the rest says why).
    void expect_error(const std::string& text, const std::string& where) {
        auto cfg = load(text);
        ASSERT_FALSE(cfg.ok()) << text;
        EXPECT_EQ(cfg.err().message.rfind(file() + ":" + where, 0), 0u) << cfg.err().message;
    }

    fs::path base_;
};

TEST_F(site_features_test, each_site_reads_rules_and_codings_with_http_defaults) {
    auto cfg = load(
        "[http]\nroot = \"a\"\nautoindex = true\nfallback = \"/index.html\"\n"
        "headers = [ { match = \"/*\", set = { \"X-From\" = \"http\" } } ]\n"
        "precompressed = [\"gzip\"]\n"
        "[[site]]\nnames = [\"a.test\"]\nroot = \"a\"\n"
        "[[site]]\nnames = [\"b.test\"]\nroot = \"b\"\nautoindex = false\nfallback = \"\"\n"
        "headers = []\nerror_pages = { 404 = \"/404.html\" }\n"
        "redirects = [ { match = \"/old/*\", to = \"/new/$1\", status = 301 } ]\n"
        "https_redirect = true\nprecompressed = [\"br\", \"zstd\"]\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    const auto& h = cfg->app_settings<http_settings>();
    ASSERT_EQ(h.sites.size(), 2u);
    const site& a = h.sites[0];
    EXPECT_TRUE(a.rules.autoindex);
    EXPECT_EQ(a.rules.fallback, "/index.html");
    ASSERT_EQ(a.rules.headers.size(), 1u);
    EXPECT_EQ(a.rules.headers[0].set[0].first, "X-From");
    EXPECT_TRUE(a.rules.error_pages.empty());
    EXPECT_EQ(a.encoding.precompressed, std::vector<coding>{coding::gzip});
    const site& b = h.sites[1];
    EXPECT_FALSE(b.rules.autoindex);
    EXPECT_TRUE(b.rules.fallback.empty());
    EXPECT_TRUE(b.rules.headers.empty());  // a site's list replaces [http]'s
    ASSERT_NE(b.rules.page_for(404), nullptr);
    EXPECT_EQ(b.rules.page_for(404)->key, "404.html");
    ASSERT_EQ(b.rules.redirects.size(), 1u);
    EXPECT_EQ(b.rules.redirects[0].status, 301);
    EXPECT_TRUE(b.rules.https_redirect);
    EXPECT_EQ(b.encoding.precompressed, (std::vector<coding>{coding::br, coding::zstd}));
}

TEST_F(site_features_test, without_sites_the_one_site_has_http_rules) {
    auto cfg = load("[http]\nroot = \"a\"\nautoindex = true\ncompress = []\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    const auto& h = cfg->app_settings<http_settings>();
    ASSERT_EQ(h.sites.size(), 1u);
    EXPECT_TRUE(h.sites[0].rules.autoindex);
    EXPECT_TRUE(h.rules.autoindex);
}

TEST_F(site_features_test, rule_problems_name_the_site_and_line) {
    const std::string two = "[[site]]\nroot = \"a\"\n[[site]]\nroot = \"b\"\n";
    expect_error(two + "error_pages = { 404 = \"/../x.html\" }\n",
                 "5: site[1].error_pages.404 \"/../x.html\" must stay under the root");
    expect_error(two + "fallback = \"/a/../../etc/passwd\"\n", "5: site[1].fallback ");
    expect_error(two + "\n\nheaders = [ { match = \"/a/**\", set = { \"X\" = \"1\" } } ]\n",
                 "7: site[1].headers[0].match \"/a/**\"");
    expect_error(two + "[[site.redirects]]\nmatch = \"/o/*\"\nto = \"/n/$1\"\nstatus = 200\n",
                 "8: site[1].redirects[0].status (200) must be one of 301, 302, 303, 307, 308");
    expect_error(two + "precompressed = [\"lzma\"]\n", "5: site[1].precompressed ");
    // Server-wide keys stay in [http]: in a site they are unknown.
    expect_error(two + "compress_cache = \"cache\"\n", "5: unknown key site[1].compress_cache");
}

TEST_F(site_features_test, a_site_that_compresses_opens_the_shared_cache) {
    auto cfg = load("[http]\ncompress_cache = \"" + (base_ / "cache").string() +
                    "\"\n[[site]]\nroot = \"a\"\n[[site]]\nroot = \"b\"\ncompress = [\"gzip\"]\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    const auto& h = cfg->app_settings<http_settings>();
    EXPECT_TRUE(h.compress_cache.dir_fd.valid());
    EXPECT_TRUE(h.sites[0].encoding.compress.empty());
    EXPECT_EQ(h.sites[1].encoding.compress, std::vector<coding>{coding::gzip});
    // Only the compressing site's text files may be compressed.
    std::ofstream(base_ / "a" / "app.css") << std::string(4096, 'a');
    std::ofstream(base_ / "b" / "app.css") << std::string(4096, 'b');
    file_cache cache(h);
    EXPECT_EQ(cache.lookup(0, "app.css", 1)->compress_mask, 0u);
    EXPECT_EQ(cache.lookup(1, "app.css", 1)->compress_mask, coding_bit(coding::gzip));
    // A missing cache folder fails the load when only a site compresses too.
    expect_error(
        "[http]\ncompress_cache = \"/nonexistent/preforkd-cache\"\n"
        "[[site]]\nroot = \"a\"\ncompress = [\"gzip\"]\n",
        "2: http.compress_cache /nonexistent/preforkd-cache: ");
}

TEST_F(site_features_test, the_file_cache_uses_each_sites_root_and_codings) {
    std::ofstream(base_ / "a" / "app.js") << "a";
    std::ofstream(base_ / "a" / "app.js.gz") << "a gz";
    std::ofstream(base_ / "b" / "app.js") << "bb";
    std::ofstream(base_ / "b" / "app.js.gz") << "b gz";
    auto cfg = load(
        "[[site]]\nroot = \"a\"\nprecompressed = [\"gzip\"]\n"
        "[[site]]\nroot = \"b\"\nprecompressed = []\n");
    ASSERT_TRUE(cfg.ok()) << cfg.err().message;
    file_cache cache(cfg->app_settings<http_settings>());
    const auto& a = cache.lookup(0, "app.js", 1);
    EXPECT_EQ(a->body, "a");
    EXPECT_NE(a->variant_mask & coding_bit(coding::gzip), 0u);  // the sidecar, site a only
    const auto& b = cache.lookup(1, "app.js", 1);
    EXPECT_EQ(b->body, "bb");
    EXPECT_EQ(b->variant_mask, 0u);
    EXPECT_NE(cache.source(0).root_id, cache.source(1).root_id);  // cache names per root
}
