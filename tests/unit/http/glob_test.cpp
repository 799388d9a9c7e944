// The glob matcher and the redirect substitution (http/glob.hpp).
#include "http/glob.hpp"

#include <gtest/gtest.h>

#include <string>

namespace preforkd::http {
namespace {

std::string captures(std::string_view pattern, std::string_view path) {
    glob_captures c;
    if (!glob_match(pattern, path, &c)) return "no match";
    std::string out;
    for (size_t i = 0; i < c.count; ++i) out += '[' + std::string(c.star[i]) + ']';
    return out;
}

TEST(glob, literal_patterns_match_only_themselves) {
    EXPECT_TRUE(glob_match("/a/b.html", "/a/b.html"));
    EXPECT_FALSE(glob_match("/a/b.html", "/a/b.htm"));
    EXPECT_FALSE(glob_match("/a/b.html", "/a/b.html/"));
    EXPECT_FALSE(glob_match("/a/b.html", "/A/b.html"));  // paths are case-sensitive
    EXPECT_TRUE(glob_match("", ""));
    EXPECT_FALSE(glob_match("", "/"));
    EXPECT_FALSE(glob_match("/", ""));
    // Only '*' is special: '?', '[' and '.' are bytes like any other.
    EXPECT_TRUE(glob_match("/a?b[c].d", "/a?b[c].d"));
    EXPECT_FALSE(glob_match("/a?b", "/axb"));
    EXPECT_FALSE(glob_match("/a.b", "/axb"));
}

TEST(glob, a_star_matches_any_run_slashes_included) {
    EXPECT_EQ(captures("/assets/*", "/assets/app.js"), "[app.js]");
    EXPECT_EQ(captures("/assets/*", "/assets/css/site.css"), "[css/site.css]");
    EXPECT_EQ(captures("/assets/*", "/assets/"), "[]");  // a trailing star may match nothing
    EXPECT_EQ(captures("/assets/*", "/assets"), "no match");
    EXPECT_EQ(captures("*", ""), "[]");
    EXPECT_EQ(captures("*", "/anything/at/all"), "[/anything/at/all]");
    EXPECT_EQ(captures("/*.css", "/a/b.css"), "[a/b]");
    EXPECT_EQ(captures("/*.css", "/a.css/b"), "no match");
}

TEST(glob, several_stars_capture_in_order_earlier_ones_shortest) {
    EXPECT_EQ(captures("/*/*", "/a/b/c"), "[a][b/c]");
    EXPECT_EQ(captures("/*-*.js", "/x-y-z.js"), "[x][y-z]");
    EXPECT_EQ(captures("/blog/*/*/*.html", "/blog/2024/05/post.html"), "[2024][05][post]");
    EXPECT_EQ(captures("*a*a*", "aaa"), "[][][a]");
    EXPECT_EQ(captures("/*x", "/xxxx"), "[xxx]");  // the last star backs up to the end
    EXPECT_EQ(captures("/*ab*ab", "/aabab"), "[a][]");
    EXPECT_EQ(captures("/*/*", "/a"), "no match");
}

TEST(glob, backtracking_stays_linear_on_hostile_input) {
    std::string path = "/" + std::string(8000, 'a');
    std::string pattern = "/*a*a*a*a*a*a*a*a*b";
    EXPECT_FALSE(glob_match(pattern, path));  // quick: one star backs up at a time
}

TEST(glob, more_than_nine_stars_match_but_capture_nine) {
    glob_captures c;
    ASSERT_TRUE(glob_match("*a*a*a*a*a*a*a*a*a*a*", "aaaaaaaaaaX", &c));
    EXPECT_EQ(c.count, 9u);
}

TEST(glob, problems_name_what_is_wrong) {
    EXPECT_EQ(glob_problem("/a/*"), "");
    EXPECT_EQ(glob_problem("/"), "");
    EXPECT_NE(glob_problem(""), "");
    EXPECT_NE(glob_problem("a/*"), "");
    EXPECT_NE(glob_problem("/a/**"), "");
    EXPECT_NE(glob_problem("/a\nb"), "");
    EXPECT_NE(glob_problem("/*/*/*/*/*/*/*/*/*/*"), "");
    EXPECT_EQ(glob_problem("/*/*/*/*/*/*/*/*/*"), "");
    EXPECT_NE(glob_problem("/" + std::string(max_glob_length, 'a')), "");
}

std::string substituted(std::string_view pattern, std::string_view path, std::string_view to) {
    glob_captures c;
    if (!glob_match(pattern, path, &c)) return "no match";
    std::string out;
    substitute(to, c, out);
    return out;
}

TEST(substitution, dollar_n_is_the_nth_star_percent_encoded) {
    EXPECT_EQ(substituted("/old/*", "/old/a/b.html", "/new/$1"), "/new/a/b.html");
    EXPECT_EQ(substituted("/*/*", "/x/y", "/$2/$1/$2"), "/y/x/y");
    EXPECT_EQ(substituted("/old/*", "/old/a b?c#d%", "/new/$1"), "/new/a%20b%3Fc%23d%25");
    EXPECT_EQ(substituted("/old/*", "/old/\r\n", "/new/$1"), "/new/%0D%0A");
    EXPECT_EQ(substituted("/old/*", "/old/x", "/cost$$/$1"), "/cost$/x");
    EXPECT_EQ(substituted("/old/*", "/old/x", "https://example.org/$1?from=old"),
              "https://example.org/x?from=old");
    EXPECT_EQ(substituted("/old/*", "/old/", "/new/$1"), "/new/");
    EXPECT_EQ(substituted("/a", "/a", "/b$9"), "/b");  // trusted input: nothing to put there
}

TEST(substitution, problems_name_what_is_wrong) {
    EXPECT_EQ(substitution_problem("/new/$1", 1), "");
    EXPECT_EQ(substitution_problem("/new/$$", 0), "");
    EXPECT_EQ(substitution_problem("/new/", 0), "");
    EXPECT_NE(substitution_problem("/new/$2", 1), "");
    EXPECT_NE(substitution_problem("/new/$0", 1), "");
    EXPECT_NE(substitution_problem("/new/$", 1), "");
    EXPECT_NE(substitution_problem("/new/$x", 1), "");
}

}  // namespace
}  // namespace preforkd::http
