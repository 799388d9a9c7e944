#include "http/status_html.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <preforkd/detail/text.hpp>

using namespace preforkd;
using namespace preforkd::http;

namespace {

status_snapshot sample() {
    status_snapshot s;
    s.supervisor_pid = 1234;
    s.generation = 3;
    s.uptime_s = 60;
    s.workers.push_back({0, 1240, 3, worker_state::idle, 0, 1520, 1556480, 310, 120});
    s.workers.push_back({1, 1241, 3, worker_state::busy, 2, 4500, 4608000, 90, 5});
    s.workers.push_back({4, 1250, 2, worker_state::retiring, 1, 10, 100, 1, 5});
    s.workers.push_back({5, 1251, 3, worker_state::starting, 0, 0, 0, 0, 0});
    return s;
}

size_t count(const std::string& text, std::string_view what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

std::string render(const status_snapshot& s, std::string_view path = "/server-status") {
    std::string out;
    render_status_html(s, "0.1.0", path, out);
    return out;
}

}  // namespace

TEST(status_html, one_cell_per_live_worker_coloured_by_state) {
    std::string t = render(sample());
    EXPECT_EQ(count(t, "class=\"cell "), 4u);
    EXPECT_EQ(count(t, "<span class=\"cell idle\""), 1u);
    EXPECT_EQ(count(t, "<span class=\"cell busy\""), 1u);
    EXPECT_EQ(count(t, "<span class=\"cell retiring\""), 1u);
    EXPECT_EQ(count(t, "<span class=\"cell starting\""), 1u);
    EXPECT_NE(t.find("pid 1241, generation 3, busy, 2 connections, 4500 requests\">W</span>"),
              std::string::npos);
    EXPECT_EQ(count(render(status_snapshot{}), "class=\"cell "), 0u);
}

TEST(status_html, counts_per_generation_newest_first) {
    std::string t = render(sample());
    const size_t g3 =
        t.find("<tr><td>3</td><td>1</td><td>1</td><td>1</td><td>0</td><td>3</td></tr>");
    const size_t g2 =
        t.find("<tr><td>2</td><td>0</td><td>0</td><td>0</td><td>1</td><td>1</td></tr>");
    ASSERT_NE(g3, std::string::npos) << t;
    ASSERT_NE(g2, std::string::npos);
    EXPECT_LT(g3, g2);
}

TEST(status_html, is_self_contained_and_polls_json) {
    std::string t = render(sample());
    EXPECT_TRUE(t.starts_with("<!DOCTYPE html>"));
    EXPECT_TRUE(t.ends_with("</html>\n"));
    EXPECT_NE(t.find("data-json=\"/server-status?json\""), std::string::npos);
    EXPECT_NE(t.find("setTimeout(poll,1000)"), std::string::npos);
    EXPECT_NE(t.find("id=\"rps\""), std::string::npos);
    EXPECT_NE(t.find("id=\"bps\""), std::string::npos);
    // No external asset: nothing is loaded from anywhere but the page's own ?json.
    for (std::string_view ext : {"src=", "href=", "http://", "https://", "@import", "url("})
        EXPECT_EQ(t.find(ext), std::string::npos) << ext;
}

TEST(status_html, escapes_what_comes_from_configuration) {
    std::string t = render(sample(), "/s\"><script>alert(1)</script>");
    EXPECT_EQ(t.find("<script>alert"), std::string::npos);
    EXPECT_NE(t.find("data-json=\"/s&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;?json\""),
              std::string::npos);
}

// The one HTML escaper (detail/text.hpp) that the status page and the autoindex listing share.
TEST(html_escaped, the_five_characters_become_entities_and_nothing_else_changes) {
    std::string e = "kept:";
    preforkd::detail::append_html_escaped(e, "a&b<c>d\"e'f");
    EXPECT_EQ(e, "kept:a&amp;b&lt;c&gt;d&quot;e&#39;f");
    std::string plain;
    preforkd::detail::append_html_escaped(plain, "caf\xc3\xa9 /x?y=1 \t");
    EXPECT_EQ(plain, "caf\xc3\xa9 /x?y=1 \t");
    std::string none;
    preforkd::detail::append_html_escaped(none, "");
    EXPECT_TRUE(none.empty());
}

TEST(accept, quality_of_the_most_specific_range) {
    EXPECT_EQ(accept_quality("text/html", "text/html"), 1000);
    EXPECT_EQ(accept_quality("text/*;q=0.5, text/html;q=0.2", "text/html"), 200);
    EXPECT_EQ(accept_quality("text/*;q=0.5, text/html;q=0.2", "text/plain"), 500);
    EXPECT_EQ(accept_quality("*/*;q=0.1", "text/plain"), 100);
    EXPECT_EQ(accept_quality("application/json", "text/plain"), -1);
    EXPECT_EQ(accept_quality("", "text/plain"), 1000);  // no Accept: anything
    EXPECT_EQ(accept_quality("TEXT/HTML ; Q=0.7", "text/html"), 700);
    EXPECT_EQ(accept_quality("text/html;level=1;q=0.3;ext=1", "text/html"), 300);
    EXPECT_EQ(accept_quality("text/html;q=1.000", "text/html"), 1000);
    EXPECT_EQ(accept_quality("text/html;q=0", "text/html"), 0);
    // Malformed weights drop their element only.
    EXPECT_EQ(accept_quality("text/html;q=2, */*;q=0.4", "text/html"), 400);
    EXPECT_EQ(accept_quality("text/html;q=0.1234", "text/html"), -1);
    EXPECT_EQ(accept_quality("text/html;q=1.5", "text/html"), -1);
    EXPECT_EQ(accept_quality("text/html;q=", "text/html"), -1);
    EXPECT_EQ(accept_quality("texthtml", "text/html"), -1);
}

TEST(accept, browsers_get_html_curl_and_scripts_get_text) {
    // Chromium's and Firefox's navigation Accept.
    EXPECT_TRUE(
        prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
                     "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"));
    EXPECT_TRUE(prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    EXPECT_FALSE(prefers_html("*/*"));                    // curl
    EXPECT_FALSE(prefers_html(""));                       // no Accept field
    EXPECT_FALSE(prefers_html("text/plain, text/html"));  // a tie keeps text
    EXPECT_FALSE(prefers_html("text/html;q=0.5, text/plain"));
    EXPECT_FALSE(prefers_html("text/html;q=0, */*"));
    EXPECT_FALSE(prefers_html("application/json"));
    EXPECT_TRUE(prefers_html("text/html, text/plain;q=0.9"));
    EXPECT_TRUE(prefers_html("text/*, text/plain;q=0.5"));
}

TEST(accept, query_wins_over_accept) {
    const char* browser = "text/html,*/*;q=0.8";
    EXPECT_EQ(choose_status_format("json", browser), status_format::json);
    EXPECT_EQ(choose_status_format("auto", browser), status_format::text);
    EXPECT_EQ(choose_status_format("", browser), status_format::html);
    EXPECT_EQ(choose_status_format("html", "*/*"), status_format::html);
    EXPECT_EQ(choose_status_format("x=1&html", ""), status_format::html);
    EXPECT_EQ(choose_status_format("", "*/*"), status_format::text);
    EXPECT_EQ(choose_status_format("htmlx", "*/*"), status_format::text);
    EXPECT_EQ(choose_status_format("json=1", ""), status_format::json);
}

namespace {

// base64(SHA-256(text)) by the openssl CLI, as a CSP hash source wants it.
std::string csp_hash(std::string_view text) {
    char name[] = "/tmp/preforkd-csp-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd < 0) return "";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    std::string out;
    if (ok) {
        std::string cmd = std::string("openssl dgst -sha256 -binary ") + name + " | base64 -w0";
        if (FILE* p = ::popen(cmd.c_str(), "r")) {
            char buf[128];
            size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
            ::pclose(p);
        }
    }
    ::unlink(name);
    return out;
}

}  // namespace

// The page runs under a strict CSP: its inline style and script are allowed by hash, and the
// hashes are of exactly the texts the page carries between its tags.
TEST(status_html, csp_allows_exactly_the_pages_own_style_and_script) {
    const std::string csp(status_html_csp);
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
    EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos);
    const std::string style = csp_hash(status_html_style());
    const std::string script = csp_hash(status_html_script());
    ASSERT_FALSE(style.empty());
    EXPECT_NE(csp.find("style-src 'sha256-" + style + "'"), std::string::npos)
        << "the style changed: its hash is now sha256-" << style;
    EXPECT_NE(csp.find("script-src 'sha256-" + script + "'"), std::string::npos)
        << "the script changed: its hash is now sha256-" << script;
    const std::string t = render(sample());
    EXPECT_NE(t.find("<style>" + std::string(status_html_style()) + "</style>"), std::string::npos);
    EXPECT_NE(t.find("<script>" + std::string(status_html_script()) + "</script>"),
              std::string::npos);
    // One of each, and no inline style attribute or event handler a hash would not cover.
    EXPECT_EQ(count(t, "<script"), 1u);
    EXPECT_EQ(count(t, "<style"), 1u);
    EXPECT_EQ(count(t, " style="), 0u);
    EXPECT_EQ(count(t, " onclick="), 0u);
}
