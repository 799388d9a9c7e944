#include "tls/server_name.hpp"

#include <gtest/gtest.h>

namespace preforkd::tls {
namespace {

TEST(server_name, exact_names_match_case_insensitively_with_the_trailing_dot_ignored) {
    EXPECT_TRUE(server_name_matches("example.org", "example.org"));
    EXPECT_TRUE(server_name_matches("example.org", "EXAMPLE.Org"));
    EXPECT_TRUE(server_name_matches("example.org", "example.org."));
    EXPECT_TRUE(server_name_matches("Example.org.", "example.org"));
    EXPECT_FALSE(server_name_matches("example.org", "www.example.org"));
    EXPECT_FALSE(server_name_matches("example.org", "example.org.."));
    EXPECT_FALSE(server_name_matches("example.org", ""));
    EXPECT_FALSE(server_name_matches("", "example.org"));
}

TEST(server_name, a_wildcard_covers_exactly_one_label) {
    EXPECT_TRUE(server_name_matches("*.example.net", "a.example.net"));
    EXPECT_TRUE(server_name_matches("*.example.net", "WWW.Example.NET."));
    EXPECT_FALSE(server_name_matches("*.example.net", "example.net"));
    EXPECT_FALSE(server_name_matches("*.example.net", "a.b.example.net"));
    EXPECT_FALSE(server_name_matches("*.example.net", ".example.net"));
    EXPECT_FALSE(server_name_matches("*.example.net", "aexample.net"));
    EXPECT_FALSE(server_name_matches("*.example.net", "a.example.org"));
    // Only a whole leftmost "*" label is a wildcard.
    EXPECT_FALSE(server_name_matches("w*.example.net", "www.example.net"));
    EXPECT_TRUE(server_name_matches("w*.example.net", "w*.example.net"));
    EXPECT_FALSE(server_name_matches("*", "localhost"));
}

TEST(server_name, normalize_lowers_and_drops_one_trailing_dot) {
    EXPECT_EQ(normalize_server_name("WWW.Example.ORG."), "www.example.org");
    EXPECT_EQ(normalize_server_name("a"), "a");
    EXPECT_EQ(normalize_server_name(""), "");
}

TEST(server_name, the_first_certificate_is_the_default) {
    std::vector<std::vector<std::string>> names = {{"example.org", "www.example.org"},
                                                   {"other.net", "*.other.net"}};
    EXPECT_EQ(select_certificate(names, ""), 0u);
    EXPECT_EQ(select_certificate(names, "."), 0u);
    EXPECT_EQ(select_certificate(names, "unknown.test"), 0u);
    EXPECT_EQ(select_certificate(names, "www.example.org"), 0u);
    EXPECT_EQ(select_certificate(names, "Other.Net."), 1u);
    EXPECT_EQ(select_certificate(names, "a.other.net"), 1u);
    EXPECT_EQ(select_certificate(names, "a.b.other.net"), 0u);
    EXPECT_EQ(select_certificate({}, "a.other.net"), 0u);
}

TEST(server_name, an_exact_name_wins_over_an_earlier_wildcard) {
    std::vector<std::vector<std::string>> names = {
        {"default.test"}, {"*.example.net"}, {"api.example.net"}};
    EXPECT_EQ(select_certificate(names, "api.example.net"), 2u);
    EXPECT_EQ(select_certificate(names, "www.example.net"), 1u);
}

}  // namespace
}  // namespace preforkd::tls
