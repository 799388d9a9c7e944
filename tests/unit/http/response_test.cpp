#include "http/response.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace preforkd::http;

namespace {
constexpr time_t rfc_example = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
}

TEST(http_date, formats_imf_fixdate) {
    char out[http_date_length + 1];
    format_http_date(rfc_example, out);
    EXPECT_STREQ(out, "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(http_date, parses_all_three_formats) {
    time_t t = 0;
    ASSERT_TRUE(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", t));
    EXPECT_EQ(t, rfc_example);
    t = 0;
    ASSERT_TRUE(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", t));
    EXPECT_EQ(t, rfc_example);
    t = 0;
    ASSERT_TRUE(parse_http_date("Sun Nov  6 08:49:37 1994", t));
    EXPECT_EQ(t, rfc_example);
}

TEST(http_date, refuses_malformed_dates) {
    time_t t = 0;
    EXPECT_FALSE(parse_http_date("", t));
    EXPECT_FALSE(parse_http_date("yesterday", t));
    EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC", t));
    EXPECT_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT", t));
    EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT", t));
    EXPECT_FALSE(parse_http_date("Sun, 6 Nov 1994 08:49:37 GMT", t));
}

TEST(date_cache, formats_server_and_date_lines_and_log_time) {
    date_cache d("preforkd/1.2.3");
    d.update(rfc_example);
    EXPECT_EQ(d.server_and_date(),
              "Server: preforkd/1.2.3\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
    EXPECT_EQ(d.log_time(), "06/Nov/1994:08:49:37 +0000");
    d.update(rfc_example + 1);
    EXPECT_EQ(d.server_and_date(),
              "Server: preforkd/1.2.3\r\nDate: Sun, 06 Nov 1994 08:49:38 GMT\r\n");
}

TEST(etag, depends_on_mtime_and_size) {
    EXPECT_EQ(make_etag(0x10, 0x20, 0x30), "\"10.20-30\"");
    EXPECT_NE(make_etag(1, 0, 5), make_etag(1, 1, 5));
    EXPECT_NE(make_etag(1, 0, 5), make_etag(1, 0, 6));
}

TEST(if_none_match, matches_a_listed_tag_weakly) {
    EXPECT_TRUE(if_none_match_matches("\"a\"", "\"a\""));
    EXPECT_TRUE(if_none_match_matches("\"x\", \"a\"", "\"a\""));
    EXPECT_TRUE(if_none_match_matches("W/\"a\"", "\"a\""));
    EXPECT_TRUE(if_none_match_matches(" * ", "\"a\""));
    EXPECT_FALSE(if_none_match_matches("\"b\"", "\"a\""));
    EXPECT_FALSE(if_none_match_matches("\"ab\"", "\"a\""));
    EXPECT_FALSE(if_none_match_matches("", "\"a\""));
}

TEST(if_range, compares_tags_strongly_and_dates_exactly) {
    EXPECT_TRUE(if_range_matches("\"a\"", "\"a\"", 0));
    EXPECT_FALSE(if_range_matches("W/\"a\"", "\"a\"", 0));
    EXPECT_FALSE(if_range_matches("\"b\"", "\"a\"", 0));
    EXPECT_TRUE(if_range_matches("Sun, 06 Nov 1994 08:49:37 GMT", "\"a\"", rfc_example));
    EXPECT_FALSE(if_range_matches("Sun, 06 Nov 1994 08:49:37 GMT", "\"a\"", rfc_example + 1));
}

TEST(evaluate_range, reads_first_last_ranges) {
    byte_range r = evaluate_range("bytes=0-99", 1000);
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 0u);
    EXPECT_EQ(r.length, 100u);
    r = evaluate_range("bytes=500-", 1000);
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 500u);
    EXPECT_EQ(r.length, 500u);
}

TEST(evaluate_range, clamps_a_last_position_past_the_end) {
    byte_range r = evaluate_range("bytes=990-5000", 1000);
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 990u);
    EXPECT_EQ(r.length, 10u);
}

TEST(evaluate_range, reads_suffix_ranges) {
    byte_range r = evaluate_range("bytes=-10", 1000);
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 990u);
    EXPECT_EQ(r.length, 10u);
    r = evaluate_range("bytes=-5000", 1000);
    EXPECT_EQ(r.first, 0u);
    EXPECT_EQ(r.length, 1000u);
}

TEST(evaluate_range, reports_unsatisfiable_ranges) {
    EXPECT_EQ(evaluate_range("bytes=1000-", 1000).kind, range_kind::unsatisfiable);
    EXPECT_EQ(evaluate_range("bytes=2000-3000", 1000).kind, range_kind::unsatisfiable);
    EXPECT_EQ(evaluate_range("bytes=-0", 1000).kind, range_kind::unsatisfiable);
    EXPECT_EQ(evaluate_range("bytes=0-", 0).kind, range_kind::unsatisfiable);
}

TEST(evaluate_range, ignores_what_it_does_not_serve) {
    EXPECT_EQ(evaluate_range("bytes=0-1,5-6", 1000).kind, range_kind::full);
    EXPECT_EQ(evaluate_range("items=0-1", 1000).kind, range_kind::full);
    EXPECT_EQ(evaluate_range("bytes=5-1", 1000).kind, range_kind::full);
    EXPECT_EQ(evaluate_range("bytes=a-b", 1000).kind, range_kind::full);
    EXPECT_EQ(evaluate_range("bytes=-", 1000).kind, range_kind::full);
    EXPECT_EQ(evaluate_range("bytes=+1-2", 1000).kind, range_kind::full);
    EXPECT_EQ(evaluate_range("BYTES=0-1", 1000).kind, range_kind::partial);
}

// RFC 9110 section 14.1.2: positions have no upper bound. One past 64 bits is still past
// the end of the file: a last-pos is clamped, a first-pos is unsatisfiable, a suffix
// takes the whole file.
TEST(evaluate_range, reads_positions_of_twenty_digits_and_more) {
    byte_range r = evaluate_range("bytes=0-99999999999999999999", 1000);
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 0u);
    EXPECT_EQ(r.length, 1000u);
    r = evaluate_range("bytes=10-18446744073709551616", 1000);  // 2^64
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 10u);
    EXPECT_EQ(r.length, 990u);
    r = evaluate_range("bytes=-99999999999999999999", 1000);
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 0u);
    EXPECT_EQ(r.length, 1000u);
    r = evaluate_range("bytes=000000000000000000000005-000000000000000000000009", 1000);
    EXPECT_EQ(r.kind, range_kind::partial);
    EXPECT_EQ(r.first, 5u);
    EXPECT_EQ(r.length, 5u);
    EXPECT_EQ(evaluate_range("bytes=99999999999999999999-", 1000).kind, range_kind::unsatisfiable);
    EXPECT_EQ(evaluate_range("bytes=18446744073709551615-", 1000).kind, range_kind::unsatisfiable);
    EXPECT_EQ(evaluate_range("bytes=99999999999999999999-99999999999999999999", 1000).kind,
              range_kind::unsatisfiable);
    EXPECT_EQ(evaluate_range("bytes=18446744073709551615-99999999999999999999", 1000).kind,
              range_kind::unsatisfiable);
    // last-pos < first-pos stays an invalid range-spec, however long the numbers.
    EXPECT_EQ(evaluate_range("bytes=99999999999999999999-5", 1000).kind, range_kind::full);
    EXPECT_EQ(evaluate_range("bytes=99999999999999999999-99999999999999999998", 1000).kind,
              range_kind::full);
    EXPECT_EQ(evaluate_range("bytes=99999999999999999999-099999999999999999999", 1000).kind,
              range_kind::unsatisfiable);
}

TEST(head_writer, writes_status_server_date_headers_and_connection) {
    date_cache d("preforkd/1.0");
    d.update(rfc_example);
    std::string out;
    head_writer w(out);
    w.status(404, d);
    w.header("Content-Length", uint64_t{42});
    w.header("X-A", "b");
    w.end(false, 1);
    EXPECT_EQ(out,
              "HTTP/1.1 404 Not Found\r\n"
              "Server: preforkd/1.0\r\n"
              "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
              "Content-Length: 42\r\n"
              "X-A: b\r\n"
              "Connection: close\r\n"
              "\r\n");
}

TEST(head_writer, says_keep_alive_only_to_http_1_0) {
    date_cache d("s");
    d.update(rfc_example);
    std::string a, b;
    head_writer(a).end(true, 0);
    head_writer(b).end(true, 1);
    EXPECT_EQ(a, "Connection: keep-alive\r\n\r\n");
    EXPECT_EQ(b, "\r\n");
}

TEST(reason_phrase, covers_every_status_sent) {
    for (int s :
         {200, 206, 301, 304, 400, 403, 404, 405, 408, 411, 413, 414, 416, 431, 500, 501, 505})
        EXPECT_FALSE(reason_phrase(s).empty()) << s;
}

TEST(error_body, has_the_length_it_announces) {
    for (int s : {400, 404, 505}) {
        std::string out;
        size_t n = append_error_body(out, s);
        EXPECT_EQ(n, out.size());
        EXPECT_EQ(n, error_body_length(s));
        EXPECT_NE(out.find(std::to_string(s)), std::string::npos);
    }
}
