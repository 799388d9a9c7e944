// Reading site rules from a real TOML file: values, defaults, and every class of error with
// its file:line (http/site_rules.hpp, and the nested readers of core/config_reader.cpp).
#include "http/site_rules.hpp"

#include <gtest/gtest.h>

#include <preforkd/config.hpp>
#include <string>

namespace preforkd::http {
namespace {

// Parses `text` as a config whose [http] holds only site rules; `out` gets them.
result<config> load(std::string_view text, site_rules& out) {
    app_schema s;
    s.tables = {"http"};
    s.parse = [&out](app_tables& tables) -> result<std::shared_ptr<const void>> {
        table_reader& r = tables.table("http");
        out = parse_site_rules(r, site_rules{});
        if (auto f = r.finish(); !f) return std::move(f).err();
        return std::shared_ptr<const void>();
    };
    return parse_config(text, "/srv/x.toml", s);
}

site_rules ok(std::string_view text) {
    site_rules rules;
    auto r = load(text, rules);
    EXPECT_TRUE(r.ok()) << r.err().message;
    return rules;
}

std::string error_of(std::string_view text) {
    site_rules rules;
    auto r = load(text, rules);
    EXPECT_FALSE(r.ok()) << "loaded:\n" << text;
    return r ? std::string() : r.err().message;
}

TEST(site_rules, absent_keys_are_all_off) {
    site_rules r = ok("[http]\n");
    EXPECT_TRUE(r.empty());
}

TEST(site_rules, every_key_is_read) {
    site_rules r = ok(R"([http]
error_pages = { 404 = "/errors/404.html", 500 = "/500.html" }
fallback = "/index.html"
autoindex = true
https_redirect = true
headers = [
  { match = "/assets/*", set = { "Cache-Control" = "max-age=31536000, immutable", "X-A" = "1" } },
  { match = "/*", set = { "X-Frame-Options" = "DENY" } },
]
redirects = [ { match = "/old/*", to = "/new/$1", status = 301 }, { match = "/x", to = "/y" } ]
)");
    ASSERT_EQ(r.error_pages.size(), 2u);
    EXPECT_EQ(r.page_for(404)->path, "/errors/404.html");
    EXPECT_EQ(r.page_for(404)->key, "errors/404.html");
    EXPECT_EQ(r.page_for(500)->key, "500.html");
    EXPECT_EQ(r.page_for(403), nullptr);
    EXPECT_EQ(r.fallback, "/index.html");
    EXPECT_EQ(r.fallback_key, "index.html");
    EXPECT_TRUE(r.autoindex);
    EXPECT_TRUE(r.https_redirect);
    ASSERT_EQ(r.headers.size(), 2u);
    EXPECT_EQ(r.headers[0].match, "/assets/*");
    ASSERT_EQ(r.headers[0].set.size(), 2u);
    EXPECT_EQ(r.headers[0].set[0].first, "Cache-Control");  // in the order written
    EXPECT_EQ(r.headers[0].set[1].first, "X-A");
    ASSERT_EQ(r.redirects.size(), 2u);
    EXPECT_EQ(r.redirects[0].to, "/new/$1");
    EXPECT_EQ(r.redirects[0].status, 301);
    EXPECT_EQ(r.redirects[1].status, 308);  // the default
}

TEST(site_rules, a_table_keeps_the_defaults_it_does_not_set_and_replaces_the_others) {
    site_rules defaults = ok(R"([http]
fallback = "/index.html"
headers = [ { match = "/*", set = { "X-A" = "1" } } ]
)");
    site_rules rules;
    app_schema s;
    s.tables = {"http"};
    s.parse = [&](app_tables& tables) -> result<std::shared_ptr<const void>> {
        table_reader& r = tables.table("http");
        rules = parse_site_rules(r, defaults);
        if (auto f = r.finish(); !f) return std::move(f).err();
        return std::shared_ptr<const void>();
    };
    ASSERT_TRUE(parse_config("[http]\nheaders = []\nautoindex = true\n", "/srv/x.toml", s).ok());
    EXPECT_EQ(rules.fallback, "/index.html");
    EXPECT_TRUE(rules.headers.empty());
    EXPECT_TRUE(rules.autoindex);
}

TEST(site_rules, errors_name_file_line_and_key) {
    EXPECT_EQ(error_of("[http]\n\nerror_pages = { 200 = \"/x.html\" }\n"),
              "/srv/x.toml:3: http.error_pages.200 is not an error status (400 to 599)");
    EXPECT_EQ(error_of("[http]\nerror_pages = { abc = \"/x.html\" }\n"),
              "/srv/x.toml:2: http.error_pages.abc is not an error status (400 to 599)");
    EXPECT_EQ(error_of("[http]\nerror_pages = { 404 = \"x.html\" }\n"),
              "/srv/x.toml:2: http.error_pages.404 \"x.html\" must be a path starting with \"/\"");
    EXPECT_EQ(error_of("[http]\nerror_pages = { 404 = \"/a/../../x.html\" }\n"),
              "/srv/x.toml:2: http.error_pages.404 \"/a/../../x.html\" must stay under the root "
              "(no \"..\")");
    EXPECT_EQ(error_of("[http]\nerror_pages = { 404 = 3 }\n"),
              "/srv/x.toml:2: http.error_pages.404 must be a string, not an integer");
    EXPECT_EQ(error_of("[http]\nerror_pages = \"/404.html\"\n"),
              "/srv/x.toml:2: http.error_pages must be a table, not a string");
    EXPECT_EQ(
        error_of("[http]\nfallback = \"/../index.html\"\n"),
        "/srv/x.toml:2: http.fallback \"/../index.html\" must stay under the root (no \"..\")");
    EXPECT_EQ(error_of("[http]\nfallback = \"index.html\"\n"),
              "/srv/x.toml:2: http.fallback \"index.html\" must be a path starting with \"/\"");
    EXPECT_EQ(error_of("[http]\nfallback = \"/app/\"\n"),
              "/srv/x.toml:2: http.fallback \"/app/\" must name a file, not a folder");
}

TEST(site_rules, rule_errors_name_the_item) {
    EXPECT_EQ(error_of("[http]\nredirects = [\n  { match = \"/a\", to = \"/b\" },\n"
                       "  { match = \"/old/*\", to = \"/new/$1\", status = 200 },\n]\n"),
              "/srv/x.toml:4: http.redirects[1].status (200) must be one of 301, 302, 303, 307, "
              "308");
    EXPECT_EQ(error_of("[http]\nredirects = [ { match = \"old/*\", to = \"/new/$1\" } ]\n"),
              "/srv/x.toml:2: http.redirects[0].match \"old/*\" must start with \"/\"");
    EXPECT_EQ(error_of("[http]\nredirects = [ { match = \"/old/**\", to = \"/new/$1\" } ]\n"),
              "/srv/x.toml:2: http.redirects[0].match \"/old/**\" holds \"**\" (one \"*\" already "
              "matches across \"/\")");
    EXPECT_EQ(error_of("[http]\nredirects = [ { match = \"/old/*\", to = \"/new/$2\" } ]\n"),
              "/srv/x.toml:2: http.redirects[0].to \"/new/$2\" names $2, but match has 1 \"*\"");
    EXPECT_EQ(error_of("[http]\nredirects = [ { match = \"/old/*\", to = \"//evil/$1\" } ]\n"),
              "/srv/x.toml:2: http.redirects[0].to \"//evil/$1\" must be a path starting with "
              "\"/\" or an http(s):// URL, in visible ASCII");
    EXPECT_EQ(error_of("[http]\nredirects = [ { match = \"/a\", to = \"/b\", code = 301 } ]\n"),
              "/srv/x.toml:2: unknown key http.redirects[0].code");
    EXPECT_EQ(error_of("[http]\nredirects = [ \"/a\" ]\n"),
              "/srv/x.toml:2: http.redirects[0] must be a table, not a string");
    EXPECT_EQ(
        error_of("[http]\nheaders = [ { match = \"/*\", set = { \"Bad Name\" = \"x\" } } ]\n"),
        "/srv/x.toml:2: http.headers[0].set.Bad Name is no header name (RFC 9110 token "
        "characters only)");
    EXPECT_EQ(error_of("[http]\nheaders = [ { match = \"/*\", set = { \"X-A\" = \"a\\r\\nB: c\" } "
                       "} ]\n"),
              "/srv/x.toml:2: http.headers[0].set.X-A has a value with a control byte (CR, LF, "
              "NUL...)");
    EXPECT_EQ(error_of("[http]\nheaders = [ { match = \"/*\", set = { \"Content-Length\" = \"1\" } "
                       "} ]\n"),
              "/srv/x.toml:2: http.headers[0].set.Content-Length is written by the server and "
              "cannot be set");
    EXPECT_EQ(error_of("[http]\nheaders = [ { match = \"/*\" } ]\n"),
              "/srv/x.toml:2: http.headers[0].set is missing (set = { \"Name\" = \"value\" })");
    EXPECT_EQ(error_of("[http]\nheaders = [ { match = \"*\", set = { \"X-A\" = \"1\" } } ]\n"),
              "/srv/x.toml:2: http.headers[0].match \"*\" must start with \"/\"");
}

TEST(site_rules, headers_keep_the_order_of_the_file_not_of_the_alphabet) {
    site_rules r = ok(R"([http]
headers = [ { match = "/*", set = { "X-B" = "1", "A-C" = "2", "x-b" = "3" } } ]
)");
    ASSERT_EQ(r.headers.size(), 1u);
    ASSERT_EQ(r.headers[0].set.size(), 3u);
    EXPECT_EQ(r.headers[0].set[0].first, "X-B");
    EXPECT_EQ(r.headers[0].set[1].first, "A-C");
    EXPECT_EQ(r.headers[0].set[2].first, "x-b");
}

TEST(site_rules, header_problems) {
    EXPECT_EQ(header_problem("Cache-Control", "max-age=60"), "");
    EXPECT_EQ(header_problem("X-Empty", ""), "");
    EXPECT_NE(header_problem("", "x"), "");
    EXPECT_NE(header_problem("X:A", "x"), "");
    EXPECT_NE(header_problem("X-A", "a\nb"), "");
    EXPECT_NE(header_problem("X-A", std::string("a\0b", 3)), "");
    EXPECT_NE(header_problem("X-A", " a"), "");
    EXPECT_NE(header_problem("transfer-encoding", "chunked"), "");
}

TEST(site_rules, rules_match_the_normalised_path) {
    EXPECT_TRUE(rule_matches("/", ""));
    EXPECT_TRUE(rule_matches("/assets/*", "assets/app.js"));
    EXPECT_TRUE(rule_matches("/*", ""));
    EXPECT_FALSE(rule_matches("/assets/*", "assets"));
    EXPECT_FALSE(rule_matches("", ""));
}

}  // namespace
}  // namespace preforkd::http
