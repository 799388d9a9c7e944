#include "http/accept_encoding.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace preforkd::http;

namespace {

constexpr coding server_order[] = {coding::br, coding::zstd, coding::gzip};
constexpr unsigned all =
    coding_bit(coding::br) | coding_bit(coding::zstd) | coding_bit(coding::gzip);

coding pick(std::string_view header, unsigned available = all) {
    return choose_coding(parse_accept_encoding(header), true, available, server_order, 3);
}

}  // namespace

TEST(accept_encoding, reads_q_values_in_thousandths) {
    auto ae = parse_accept_encoding("gzip;q=0.5, br;q=1.000, zstd;q=0.001, identity;q=0");
    EXPECT_EQ(ae.quality(coding::gzip), 500);
    EXPECT_EQ(ae.quality(coding::br), 1000);
    EXPECT_EQ(ae.quality(coding::zstd), 1);
    EXPECT_EQ(ae.quality(coding::identity), 0);
}

TEST(accept_encoding, is_case_insensitive_and_allows_ows) {
    auto ae = parse_accept_encoding("  GZip \t; Q = 0.7 ,\tBR;q=0.2  ");
    EXPECT_EQ(ae.quality(coding::gzip), 700);
    EXPECT_EQ(ae.quality(coding::br), 200);
}

TEST(accept_encoding, ignores_members_with_a_bad_weight) {
    for (const char* bad : {"br;q=2", "br;q=1.5", "br;q=0.1234", "br;q=", "br;q=abc", "br;q=-1",
                            "br;q=.5", "br;q=1.001", "br;q", "b r"}) {
        auto ae = parse_accept_encoding(bad);
        EXPECT_EQ(ae.q[static_cast<size_t>(coding::br)], -1) << bad;
        EXPECT_EQ(ae.quality(coding::br), 0) << bad;
    }
    EXPECT_EQ(parse_accept_encoding("br;q=1.00").quality(coding::br), 1000);
    EXPECT_EQ(parse_accept_encoding("br;q=0.").quality(coding::br), 0);
    EXPECT_EQ(parse_accept_encoding("br;level=3;q=0.4").quality(coding::br), 400);
}

TEST(accept_encoding, the_first_member_naming_a_coding_counts) {
    EXPECT_EQ(parse_accept_encoding("br;q=0.3, br").quality(coding::br), 300);
}

TEST(accept_encoding, x_gzip_is_gzip) {
    EXPECT_EQ(parse_accept_encoding("x-gzip;q=0.8").quality(coding::gzip), 800);
}

TEST(accept_encoding, star_covers_codings_not_named) {
    auto ae = parse_accept_encoding("*;q=0.4, gzip;q=0.9");
    EXPECT_EQ(ae.quality(coding::br), 400);
    EXPECT_EQ(ae.quality(coding::gzip), 900);
    EXPECT_EQ(ae.quality(coding::identity), 400);
}

TEST(accept_encoding, identity_is_acceptable_unless_excluded_but_least_wanted) {
    EXPECT_EQ(parse_accept_encoding("gzip").quality(coding::identity), 1);
    EXPECT_EQ(parse_accept_encoding("identity;q=0").quality(coding::identity), 0);
    EXPECT_EQ(parse_accept_encoding("*;q=0").quality(coding::identity), 0);
    EXPECT_EQ(parse_accept_encoding("*;q=0, identity").quality(coding::identity), 1000);
}

TEST(choose_coding, takes_the_highest_weight) {
    EXPECT_EQ(pick("gzip;q=0.9, br;q=0.5"), coding::gzip);
    EXPECT_EQ(pick("gzip, br;q=0.999"), coding::gzip);
    EXPECT_EQ(pick("zstd"), coding::zstd);
}

TEST(choose_coding, breaks_ties_by_the_server_order_and_prefers_a_coding_to_identity) {
    EXPECT_EQ(pick("gzip, deflate, br, zstd"), coding::br);
    EXPECT_EQ(pick("gzip, identity"), coding::gzip);
    EXPECT_EQ(pick("*"), coding::br);
    constexpr coding gzip_first[] = {coding::gzip, coding::br};
    EXPECT_EQ(choose_coding(parse_accept_encoding("br, gzip"), true, all, gzip_first, 2),
              coding::gzip);
}

TEST(choose_coding, only_offers_what_is_available) {
    EXPECT_EQ(pick("br", coding_bit(coding::gzip)), coding::identity);
    EXPECT_EQ(pick("br, gzip;q=0.1", coding_bit(coding::gzip)), coding::gzip);
    EXPECT_EQ(pick("br", 0), coding::identity);
}

TEST(choose_coding, identity_wins_with_a_higher_explicit_weight) {
    EXPECT_EQ(pick("br;q=0.5, identity"), coding::identity);
    EXPECT_EQ(pick("br;q=0.5, *", coding_bit(coding::br)), coding::identity);
}

TEST(choose_coding, refused_or_absent_codings_give_identity) {
    EXPECT_EQ(pick("br;q=0, gzip;q=0, zstd;q=0"), coding::identity);
    EXPECT_EQ(pick("identity;q=0, *;q=0"), coding::identity);  // identity anyway, never 406
    EXPECT_EQ(pick(""), coding::identity);
    EXPECT_EQ(pick("deflate, compress"), coding::identity);
    EXPECT_EQ(choose_coding(parse_accept_encoding(""), false, all, server_order, 3),
              coding::identity);  // no field at all
}

TEST(choose_coding, survives_garbage) {
    const std::string cases[] = {",,,",
                                 ";;;",
                                 "=;=,=",
                                 "br;q=0.5;q=1",
                                 std::string(1000, ','),
                                 std::string("\0br", 3),
                                 "*;q=0.5, *;q=1"};
    for (const std::string& s : cases) (void)pick(s);
    EXPECT_EQ(pick("br;q=0.5;q=1"), coding::br);  // the last q parameter counts
}

TEST(coding, names_and_suffixes) {
    EXPECT_EQ(coding_name(coding::br), "br");
    EXPECT_EQ(coding_suffix(coding::zstd), ".zst");
    EXPECT_EQ(coding_suffix(coding::gzip), ".gz");
    coding c = coding::identity;
    EXPECT_TRUE(coding_from_name("zstd", c));
    EXPECT_EQ(c, coding::zstd);
    EXPECT_FALSE(coding_from_name("identity", c));
    EXPECT_FALSE(coding_from_name("GZIP", c));
}
