// Site rules through the real binary (issue 16 items 4, 5, 8): error pages, the SPA
// fallback, folder listings, rule headers, redirects, https_redirect, and -t refusing bad
// rules with their file:line.
#include <algorithm>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {
namespace {

using site_rules_it = server_test;

TEST_F(site_rules_it, error_pages_keep_the_status_and_the_type_and_fall_back_when_missing) {
    write_file(dir_.path() / "www/errors/404.html", "<p>custom not found</p>");
    write_file(dir_.path() / "www/403.txt", "custom forbidden");
    write_file(dir_.path() / "www/big/500.html", std::string(40000, 'x'));  // sendfile'd
    fs::create_directories(dir_.path() / "www/noindex");
    cfg_.set("http", "error_pages",
             R"({ 404 = "/errors/404.html", 403 = "/403.txt", 400 = "/missing.html" })");
    start();

    auto nf = http_get(port_, "/nothing-here");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    EXPECT_EQ(nf->body, "<p>custom not found</p>");
    EXPECT_EQ(nf->header("content-type").rfind("text/html", 0), 0u) << nf->header("content-type");
    EXPECT_EQ(nf->header("etag"), "") << "the page's validators do not describe the answer";
    auto head = http_get(port_, "/nothing-here", "", "HEAD");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 404);
    EXPECT_EQ(head->header("content-length"), "23");
    EXPECT_TRUE(head->body.empty());
    auto hidden = http_get(port_, "/.env");  // the dotfile refusal is a 404 like any other
    ASSERT_TRUE(hidden);
    EXPECT_EQ(hidden->status, 404);
    EXPECT_EQ(hidden->body, "<p>custom not found</p>");

    auto forbidden = http_get(port_, "/noindex/");
    ASSERT_TRUE(forbidden);
    EXPECT_EQ(forbidden->status, 403);
    EXPECT_EQ(forbidden->body, "custom forbidden");
    EXPECT_EQ(forbidden->header("content-type").rfind("text/plain", 0), 0u);

    // The page for 400 does not exist: the built-in page, and the 400 still closes.
    auto bad = send_raw(port_, "GET /../x HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_EQ(bad.responses.size(), 1u);
    EXPECT_EQ(bad.responses[0].status, 400);
    EXPECT_NE(bad.responses[0].body.find("400 Bad Request"), std::string::npos);

    // Keep-alive survives a page answer: two 404s on one connection.
    auto two = send_raw(port_,
                        "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n"
                        "Connection: close\r\n\r\n");
    ASSERT_EQ(two.responses.size(), 2u);
    EXPECT_EQ(two.responses[1].body, "<p>custom not found</p>");
}

TEST_F(site_rules_it, a_large_error_page_goes_out_whole) {
    write_file(dir_.path() / "www/big404.html", std::string(40000, 'x'));
    cfg_.set("http", "error_pages", R"({ 404 = "/big404.html" })");
    start();
    auto nf = http_get(port_, "/nope");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    EXPECT_EQ(nf->body, std::string(40000, 'x'));
}

TEST_F(site_rules_it, fallback_answers_misses_only) {
    write_file(dir_.path() / "www/index.html", "<div id=app></div>");
    write_file(dir_.path() / "www/real.css", "body{}");
    write_file(dir_.path() / "www/.secret", "s");
    fs::create_directories(dir_.path() / "www/noindex");
    cfg_.set("http", "fallback", "\"/index.html\"");
    start();

    for (const char* route : {"/app/users/42", "/deep/route/", "/real.css/x"}) {
        auto r = http_get(port_, route);
        ASSERT_TRUE(r) << route;
        EXPECT_EQ(r->status, 200) << route;
        EXPECT_EQ(r->body, "<div id=app></div>") << route;
        EXPECT_EQ(r->header("content-type").rfind("text/html", 0), 0u) << route;
    }
    auto css = http_get(port_, "/real.css");
    ASSERT_TRUE(css);
    EXPECT_EQ(css->body, "body{}");
    auto traversal = send_raw(port_, "GET /a/../../x HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_EQ(traversal.responses.size(), 1u);
    EXPECT_EQ(traversal.responses[0].status, 400);
    auto forbidden = http_get(port_, "/noindex/");
    ASSERT_TRUE(forbidden);
    EXPECT_EQ(forbidden->status, 403);
    auto hidden = http_get(port_, "/.secret");
    ASSERT_TRUE(hidden);
    EXPECT_EQ(hidden->status, 404);
    auto post = send_raw(port_, "POST /app HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(post.responses.size(), 1u);
    EXPECT_EQ(post.responses[0].status, 405);
}

TEST_F(site_rules_it, a_missing_fallback_file_is_a_plain_404) {
    cfg_.set("http", "fallback", "\"/app.html\"");
    start();
    auto r = http_get(port_, "/route");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
}

TEST_F(site_rules_it, autoindex_lists_escaped_sorted_names_with_sizes_and_dates) {
    write_file(dir_.path() / "www/files/b.txt", "12345");
    write_file(dir_.path() / "www/files/a&<b>.txt", "1");
    write_file(dir_.path() / "www/files/sp ace?.html", "");
    write_file(dir_.path() / "www/files/.hidden", "h");
    fs::create_directories(dir_.path() / "www/files/zdir");
    fs::create_directories(dir_.path() / "www/files/adir");
    write_file(dir_.path() / "www/withindex/index.html", "idx");
    cfg_.set("http", "autoindex", "true");
    start();

    auto r = http_get(port_, "/files/");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    EXPECT_EQ(r->header("content-type"), "text/html; charset=utf-8");
    const std::string& b = r->body;
    EXPECT_NE(b.find("<title>Index of /files/</title>"), std::string::npos) << b;
    EXPECT_NE(b.find("<a href=\"../\">../</a>"), std::string::npos) << b;
    EXPECT_NE(b.find("<a href=\"a%26%3Cb%3E.txt\">a&amp;&lt;b&gt;.txt</a></td><td>1</td>"),
              std::string::npos)
        << b;
    EXPECT_NE(b.find("<a href=\"sp%20ace%3F.html\">sp ace?.html</a></td><td>0</td>"),
              std::string::npos)
        << b;
    EXPECT_NE(b.find("<a href=\"b.txt\">b.txt</a></td><td>5</td><td>20"), std::string::npos) << b;
    EXPECT_EQ(b.find(".hidden"), std::string::npos) << b;
    // Folders first, each group by name.
    const size_t adir = b.find("href=\"adir/\""), zdir = b.find("href=\"zdir/\"");
    const size_t first_file = b.find("href=\"a%26"), last_file = b.find("href=\"sp%20");
    ASSERT_NE(zdir, std::string::npos);
    EXPECT_LT(adir, zdir);
    EXPECT_LT(zdir, first_file);
    EXPECT_LT(b.find("href=\"b.txt\""), last_file);

    auto head = http_get(port_, "/files/", "", "HEAD");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->header("content-length"), std::to_string(b.size()));
    EXPECT_TRUE(head->body.empty());
    auto root = http_get(port_, "/withindex/");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->body, "idx") << "an index file wins over the listing";
    auto noslash = http_get(port_, "/files");
    ASSERT_TRUE(noslash);
    EXPECT_EQ(noslash->status, 301);
}

TEST_F(site_rules_it, autoindex_shows_dotfiles_with_serve_hidden) {
    write_file(dir_.path() / "www/files/.hidden", "h");
    cfg_.set("http", "autoindex", "true");
    cfg_.set("http", "serve_hidden", "true");
    start();
    auto r = http_get(port_, "/files/");
    ASSERT_TRUE(r);
    EXPECT_NE(r->body.find("<a href=\".hidden\">.hidden</a>"), std::string::npos) << r->body;
}

TEST_F(site_rules_it, every_matching_header_rule_applies_in_order) {
    write_file(dir_.path() / "www/assets/app.js", "js");
    write_file(dir_.path() / "www/assets/app.html", "html");
    write_file(dir_.path() / "www/page.html", "page");
    write_file(dir_.path() / "www/404.html", "nf");
    cfg_.set("http", "error_pages", R"({ 404 = "/404.html" })");
    cfg_.set(
        "http", "headers",
        R"([ { match = "/*", set = { "X-Frame-Options" = "DENY", "Cache-Control" = "no-cache" } },
  { match = "/assets/*", set = { "Cache-Control" = "max-age=31536000, immutable" } },
  { match = "/assets/*.html", set = { "X-Frame-Options" = "" } } ])");
    start();

    auto js = http_get(port_, "/assets/app.js");
    ASSERT_TRUE(js);
    EXPECT_EQ(js->header("cache-control"), "max-age=31536000, immutable");
    EXPECT_EQ(js->header("x-frame-options"), "DENY");
    auto html = http_get(port_, "/assets/app.html");
    ASSERT_TRUE(html);
    EXPECT_EQ(html->header("x-frame-options"), "") << "an empty value drops the header";
    auto page = http_get(port_, "/page.html");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->header("cache-control"), "no-cache");
    auto not_modified =
        http_get(port_, "/assets/app.js", "If-None-Match: " + js->header("etag") + "\r\n");
    ASSERT_TRUE(not_modified);
    EXPECT_EQ(not_modified->status, 304);
    EXPECT_EQ(not_modified->header("cache-control"), "max-age=31536000, immutable");
    auto range = http_get(port_, "/page.html", "Range: bytes=0-1\r\n");
    ASSERT_TRUE(range);
    EXPECT_EQ(range->status, 206);
    EXPECT_EQ(range->header("x-frame-options"), "DENY");
    auto nf = http_get(port_, "/assets/none.js");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    EXPECT_EQ(nf->header("cache-control"), "max-age=31536000, immutable")
        << "an error page served from a file gets the rule headers";
}

TEST_F(site_rules_it, redirects_substitute_captures_and_keep_the_query) {
    write_file(dir_.path() / "www/old/page.html", "still here");
    cfg_.set("http", "redirects",
             R"([ { match = "/old/*", to = "/new/$1" },
  { match = "/blog/*/*.html", to = "https://blog.example.org/$1/$2?src=old", status = 301 },
  { match = "/tmp", to = "/elsewhere", status = 302 } ])");
    start();

    auto r = http_get(port_, "/old/page.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 308) << "checked before the file";
    EXPECT_EQ(r->header("location"), "/new/page.html");
    auto q = http_get(port_, "/old/a%20b/c?x=1&y=2");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->header("location"), "/new/a%20b/c?x=1&y=2");
    auto blog = http_get(port_, "/blog/2024/post.html?utm=1");
    ASSERT_TRUE(blog);
    EXPECT_EQ(blog->status, 301);
    EXPECT_EQ(blog->header("location"), "https://blog.example.org/2024/post?src=old&utm=1");
    auto tmp = http_get(port_, "/tmp", "", "HEAD");
    ASSERT_TRUE(tmp);
    EXPECT_EQ(tmp->status, 302);
    EXPECT_EQ(tmp->header("location"), "/elsewhere");
    EXPECT_TRUE(tmp->body.empty());
    auto none = http_get(port_, "/tmpx");
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 404);
}

TEST_F(site_rules_it, https_redirect_moves_plain_requests_but_not_the_probes) {
    cfg_.set("http", "https_redirect", "true");
    start();
    auto r = send_raw(port_, "GET /a%20b/c?q=1 HTTP/1.1\r\nHost: Example.org:8080\r\n\r\n");
    ASSERT_EQ(r.responses.size(), 1u);
    EXPECT_EQ(r.responses[0].status, 308);
    EXPECT_EQ(r.responses[0].header("location"), "https://Example.org/a%20b/c?q=1");
    auto v6 = send_raw(port_, "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    ASSERT_EQ(v6.responses.size(), 1u);
    EXPECT_EQ(v6.responses[0].header("location"), "https://[::1]/");
    auto absolute =
        send_raw(port_, "GET http://target.example/x HTTP/1.1\r\nHost: other.example\r\n\r\n");
    ASSERT_EQ(absolute.responses.size(), 1u);
    EXPECT_EQ(absolute.responses[0].header("location"), "https://target.example/x");
    auto health = http_get(port_, "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200) << "a load balancer checks over plain HTTP";
    // HTTP/1.0 without Host: no name to send the client to, so it is served.
    auto old = send_raw(port_, "GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(old.responses.size(), 1u);
    EXPECT_EQ(old.responses[0].status, 200);
}

// -t refuses each bad rule with the line of its key.
TEST_F(site_rules_it, check_refuses_bad_rules_with_file_and_line) {
    struct bad_case {
        std::string key, value, want;
    };
    const std::vector<bad_case> cases = {
        {"redirects", R"([ { match = "/a/*", to = "/b/$1", status = 200 } ])",
         "http.redirects[0].status (200) must be one of 301, 302, 303, 307, 308"},
        {"redirects", R"([ { match = "a/*", to = "/b/$1" } ])",
         "http.redirects[0].match \"a/*\" must start with \"/\""},
        {"headers", R"([ { match = "/*", set = { "X A" = "1" } } ])",
         "http.headers[0].set.X A is no header name (RFC 9110 token characters only)"},
        {"error_pages", R"({ 404 = "/../x.html" })",
         "http.error_pages.404 \"/../x.html\" must stay under the root (no \"..\")"},
        {"error_pages", R"({ 302 = "/x.html" })",
         "http.error_pages.302 is not an error status (400 to 599)"},
        {"fallback", R"("index.html")",
         "http.fallback \"index.html\" must be a path starting with \"/\""},
    };
    for (const bad_case& c : cases) {
        config_builder cfg(dir_.path(), port_);
        cfg.set("http", c.key, c.value);
        std::string toml = cfg.render();
        server srv(dir_.path(), port_);
        srv.write_config(toml);
        size_t at = toml.find("\n" + c.key + " = ");
        ASSERT_NE(at, std::string::npos) << toml;
        int line =
            static_cast<int>(std::count(toml.begin(), toml.begin() + static_cast<long>(at), '\n')) +
            2;
        std::string file = srv.config_path().string();
        auto t = run_binary({"-t", "-c", file});
        EXPECT_EQ(t.status, 1) << t.output;
        EXPECT_EQ(t.output,
                  "preforkd: " + file + ":" + std::to_string(line) + ": " + c.want + "\n");
    }
}

TEST_F(site_rules_it, a_reload_with_a_bad_rule_is_refused_and_the_old_rules_keep_serving) {
    cfg_.set("http", "redirects", R"([ { match = "/old", to = "/new" } ])");
    start();
    cfg_.set("http", "redirects", R"([ { match = "/old", to = "/newer", status = 399 } ])");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reload failed") != std::string::npos; }, 5s))
        << srv_->error_log();
    EXPECT_NE(srv_->error_log().find(
                  "http.redirects[0].status (399) must be one of 301, 302, 303, 307, 308"),
              std::string::npos)
        << srv_->error_log();
    auto r = http_get(port_, "/old");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 308);
    EXPECT_EQ(r->header("location"), "/new");
}

}  // namespace
}  // namespace preforkd::test
