#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "http/access_log.hpp"
#include "session_fixture.hpp"

using namespace preforkd;
using namespace preforkd::http;
using namespace preforkd::http::testing;

namespace {
const std::string index_body = "<!DOCTYPE html><h1>hello</h1>\n";
const std::string a_body = [] {
    std::string s;
    for (int i = 0; i < 10; ++i) s += "0123456789";
    return s;
}();

// Sends `request` then a well-formed GET that must never be answered.
const std::string follow_up = "GET /a.txt HTTP/1.1\r\nHost: test\r\n\r\n";
}  // namespace

class http_session_test : public session_fixture {};

TEST_F(http_session_test, serves_the_index_file_of_the_root) {
    connect();
    auto r = get("/");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body, index_body);
    EXPECT_EQ(r[0]["content-type"], "text/html");
    EXPECT_EQ(r[0]["content-length"], std::to_string(index_body.size()));
    EXPECT_EQ(r[0]["server"], std::string("preforkd/") + PREFORKD_VERSION);
    EXPECT_EQ(r[0]["date"].size(), 29u);
    EXPECT_EQ(r[0]["date"].substr(26), "GMT");
    EXPECT_EQ(r[0]["accept-ranges"], "bytes");
    EXPECT_TRUE(r[0].has("etag"));
    EXPECT_TRUE(r[0].has("last-modified"));
    EXPECT_FALSE(r[0].has("connection"));
    EXPECT_TRUE(open());
}

TEST_F(http_session_test, keeps_the_connection_alive_between_requests) {
    connect();
    for (int i = 0; i < 3; ++i) {
        auto r = get("/a.txt");
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].status, 200);
        EXPECT_EQ(r[0].body, a_body);
        EXPECT_TRUE(open());
    }
}

TEST_F(http_session_test, answers_three_pipelined_requests_in_order) {
    connect();
    std::string raw = exchange(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\n\r\n"
        "HEAD /index.html HTTP/1.1\r\nHost: test\r\n\r\n"
        "GET /docs/ HTTP/1.1\r\nHost: test\r\n\r\n");
    auto r = parse_responses(raw, {false, true, false});
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].body, a_body);
    EXPECT_EQ(r[1].status, 200);
    EXPECT_EQ(r[1]["content-length"], std::to_string(index_body.size()));
    EXPECT_EQ(r[2].body, "docs index\n");
    EXPECT_TRUE(open());
}

TEST_F(http_session_test, answers_pipelined_requests_around_a_sendfile_body_in_order) {
    connect();
    std::string raw = exchange(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\n\r\n"
        "GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n"
        "GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n");
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].body, a_body);
    EXPECT_EQ(r[1].body, big_);
    EXPECT_EQ(r[2].body, index_body);
}

TEST_F(http_session_test, answers_a_request_fed_one_byte_at_a_time) {
    connect();
    const std::string req = "GET /a.txt HTTP/1.1\r\nHost: test\r\n\r\n";
    std::string raw;
    for (char c : req) {
        send(std::string_view(&c, 1));
        raw += pump();
    }
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].body, a_body);
}

TEST_F(http_session_test, head_sends_the_headers_without_a_body) {
    connect();
    std::string raw = exchange("HEAD /a.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    ASSERT_GE(raw.size(), 4u);
    EXPECT_EQ(raw.substr(raw.size() - 4), "\r\n\r\n");
    EXPECT_NE(raw.find("Content-Length: 100\r\n"), std::string::npos);
    EXPECT_EQ(raw.find("0123456789"), std::string::npos);
}

TEST_F(http_session_test, answers_304_to_a_matching_if_none_match) {
    connect();
    auto first = get("/a.txt");
    ASSERT_EQ(first.size(), 1u);
    const std::string etag = first[0]["etag"];
    auto r = get("/a.txt", "If-None-Match: \"other\", " + etag + "\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 304);
    EXPECT_EQ(r[0]["etag"], etag);
    EXPECT_TRUE(r[0].body.empty());
    auto miss = get("/a.txt", "If-None-Match: \"other\"\r\n");
    ASSERT_EQ(miss.size(), 1u);
    EXPECT_EQ(miss[0].status, 200);
}

TEST_F(http_session_test, answers_304_to_if_modified_since_not_before_the_file) {
    connect();
    auto first = get("/a.txt");
    const std::string lm = first[0]["last-modified"];
    auto r = get("/a.txt", "If-Modified-Since: " + lm + "\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 304);
    auto old = get("/a.txt", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
    ASSERT_EQ(old.size(), 1u);
    EXPECT_EQ(old[0].status, 200);
}

TEST_F(http_session_test, if_none_match_overrides_if_modified_since) {
    connect();
    auto first = get("/a.txt");
    auto r =
        get("/a.txt",
            "If-None-Match: \"other\"\r\nIf-Modified-Since: " + first[0]["last-modified"] + "\r\n");
    EXPECT_EQ(r[0].status, 200);
}

// RFC 9110 section 5.3: field lines of one name are one comma-separated list.
TEST_F(http_session_test, combines_repeated_if_none_match_lines) {
    connect();
    const std::string etag = get("/a.txt")[0]["etag"];
    auto first = get("/a.txt", "If-None-Match: " + etag + "\r\nIf-None-Match: \"other\"\r\n");
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].status, 304);
    auto middle = get("/a.txt", "If-None-Match: \"x\"\r\nIf-None-Match: \"y\", " + etag +
                                    "\r\nIf-None-Match: \"z\"\r\n");
    ASSERT_EQ(middle.size(), 1u);
    EXPECT_EQ(middle[0].status, 304);
    auto none = get("/a.txt", "If-None-Match: \"x\"\r\nIf-None-Match: \"y\"\r\n");
    ASSERT_EQ(none.size(), 1u);
    EXPECT_EQ(none[0].status, 200);
    EXPECT_EQ(none[0].body, a_body);
    // The combined list replaces If-Modified-Since, as one line would.
    auto both = get("/a.txt",
                    "If-None-Match: \"x\"\r\nIf-None-Match: \"y\"\r\n"
                    "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n");
    ASSERT_EQ(both.size(), 1u);
    EXPECT_EQ(both[0].status, 200);
}

// RFC 9110 section 13.1.3: more than one member is not a valid date: ignored.
TEST_F(http_session_test, ignores_a_repeated_if_modified_since) {
    connect();
    const std::string lm = get("/a.txt")[0]["last-modified"];
    auto r = get("/a.txt", "If-Modified-Since: " + lm + "\r\nIf-Modified-Since: " + lm + "\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body, a_body);
}

TEST_F(http_session_test, ignores_the_range_of_a_repeated_if_range) {
    connect();
    const std::string etag = get("/a.txt")[0]["etag"];
    auto one = get("/a.txt", "Range: bytes=2-5\r\nIf-Range: " + etag + "\r\n");
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].status, 206);
    auto r =
        get("/a.txt", "Range: bytes=2-5\r\nIf-Range: " + etag + "\r\nIf-Range: " + etag + "\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body, a_body);
}

TEST_F(http_session_test, answers_206_to_a_single_range) {
    connect();
    auto r = get("/a.txt", "Range: bytes=2-5\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 206);
    EXPECT_EQ(r[0].body, "2345");
    EXPECT_EQ(r[0]["content-range"], "bytes 2-5/100");
    EXPECT_EQ(r[0]["content-length"], "4");
}

TEST_F(http_session_test, answers_206_from_a_large_file) {
    connect();
    auto r = get("/big.bin", "Range: bytes=-1000\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 206);
    EXPECT_EQ(r[0].body, big_.substr(big_.size() - 1000));
}

TEST_F(http_session_test, answers_416_to_an_unsatisfiable_range) {
    connect();
    auto r = get("/a.txt", "Range: bytes=100-\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 416);
    EXPECT_EQ(r[0]["content-range"], "bytes */100");
    EXPECT_TRUE(open());
}

TEST_F(http_session_test, clamps_a_last_position_beyond_64_bits) {
    connect();
    auto r = get("/a.txt", "Range: bytes=0-99999999999999999999\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 206);
    EXPECT_EQ(r[0]["content-range"], "bytes 0-99/100");
    EXPECT_EQ(r[0].body, a_body);
    auto far = get("/a.txt", "Range: bytes=99999999999999999999-\r\n");
    ASSERT_EQ(far.size(), 1u);
    EXPECT_EQ(far[0].status, 416);
}

TEST_F(http_session_test, ignores_a_range_whose_if_range_does_not_match) {
    connect();
    auto r = get("/a.txt", "Range: bytes=2-5\r\nIf-Range: \"stale\"\r\n");
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body, a_body);
}

TEST_F(http_session_test, redirects_a_folder_named_without_its_slash) {
    connect();
    auto r = get("/docs?x=1");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 301);
    EXPECT_EQ(r[0]["location"], "/docs/?x=1");
    EXPECT_TRUE(open());
}

TEST_F(http_session_test, redirects_to_the_normalised_path_never_to_another_host) {
    connect();
    auto r = get("//docs");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 301);
    EXPECT_EQ(r[0]["location"], "/docs/");
    EXPECT_EQ(get("/empty/../docs")[0]["location"], "/docs/");
    std::filesystem::create_directories(root_ / "my docs");
    EXPECT_EQ(get("/my%20docs")[0]["location"], "/my%20docs/");
}

TEST_F(http_session_test, answers_403_for_a_folder_without_an_index) {
    connect();
    auto r = get("/empty/");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 403);
}

TEST_F(http_session_test, answers_404_and_keeps_the_connection) {
    connect();
    auto r = get("/missing.html");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 404);
    EXPECT_EQ(r[0]["content-type"], "text/html; charset=utf-8");
    EXPECT_FALSE(r[0].has("connection"));
    auto again = get("/a.txt");
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].status, 200);
}

TEST_F(http_session_test, hides_dotfiles) {
    connect();
    EXPECT_EQ(get("/.secret")[0].status, 404);
    settings_->serve_hidden = true;
    EXPECT_EQ(get("/.secret")[0].status, 200);
}

TEST_F(http_session_test, never_follows_a_symlink_out_of_the_root) {
    connect();
    auto r = get("/escape.txt");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 404);
    EXPECT_EQ(r[0].body.find("outside"), std::string::npos);
}

TEST_F(http_session_test, answers_405_with_allow_and_closes) {
    connect();
    std::string raw = exchange(
        "POST /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello" + follow_up);
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 405);
    EXPECT_EQ(r[0]["allow"], "GET, HEAD");
    EXPECT_EQ(r[0]["connection"], "close");
    EXPECT_TRUE(eof_) << "the write side is shut after an error";
}

struct protocol_error_case {
    const char* name;
    std::string request;
    int status;
};

class protocol_error_test : public session_fixture,
                            public ::testing::WithParamInterface<protocol_error_case> {};

TEST_P(protocol_error_test, answers_with_connection_close_and_executes_nothing_after) {
    connect();
    std::string raw = exchange(GetParam().request + follow_up);
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 1u) << raw;
    EXPECT_EQ(r[0].status, GetParam().status);
    EXPECT_EQ(r[0]["connection"], "close");
    EXPECT_TRUE(eof_);
    // The session lingers, discarding, then closes: it never answers the follow-up.
    send(follow_up);
    std::string more = pump();
    EXPECT_TRUE(more.empty());
    set_now(now_ + linger_timeout_ms);
    deadline();
    EXPECT_FALSE(open());
}

INSTANTIATE_TEST_SUITE_P(
    all, protocol_error_test,
    ::testing::Values(
        protocol_error_case{"bad_header", "GET / HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n",
                            400},
        protocol_error_case{"obs_fold", "GET / HTTP/1.1\r\nHost: test\r\nX: a\r\n b\r\n\r\n", 400},
        protocol_error_case{"missing_host", "GET / HTTP/1.1\r\n\r\n", 400},
        protocol_error_case{"empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
        protocol_error_case{"te_and_cl",
                            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n",
                            400},
        protocol_error_case{"traversal",
                            "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        protocol_error_case{"encoded_slash",
                            "GET /..%2f..%2fetc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        protocol_error_case{
            "huge_header",
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(9000, 'x') + "\r\n\r\n", 431},
        protocol_error_case{"huge_target", "GET /" + std::string(9000, 'x') + " HTTP/1.1\r\n\r\n",
                            414},
        protocol_error_case{"http_2", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        protocol_error_case{"unknown_method", "BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501},
        protocol_error_case{"chunked_get",
                            "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n0\r\n\r\n",
                            411},
        protocol_error_case{"big_body_get",
                            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n", 413}),
    [](const auto& p) { return std::string(p.param.name); });

// RFC 9110 section 9.3.2: no content in an answer to HEAD, errors included; the
// Content-Length is still that of the page a GET would get.
TEST_F(http_session_test, answers_errors_to_head_without_a_body) {
    struct head_case {
        std::string request;
        int status;
    };
    for (const head_case& c :
         {head_case{"HEAD / HTTP/1.1\r\n\r\n", 400},
          head_case{"HEAD / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400},
          head_case{"HEAD / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
          head_case{"HEAD / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(9000, 'x') + "\r\n\r\n",
                    431}}) {
        connect();
        std::string raw = exchange(c.request);
        auto r = parse_responses(raw, {true});
        ASSERT_EQ(r.size(), 1u) << raw;
        EXPECT_EQ(r[0].status, c.status) << c.request.substr(0, 40);
        EXPECT_EQ(r[0]["content-length"], std::to_string(error_body_length(c.status)));
        EXPECT_EQ(r[0]["connection"], "close");
        EXPECT_EQ(raw.size(), r[0].head.size()) << "a body followed: " << raw;
        EXPECT_TRUE(eof_);
    }
    // The same error to GET keeps its page.
    connect();
    auto g = parse_responses(exchange("GET / HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(g.size(), 1u);
    EXPECT_EQ(g[0].status, 400);
    EXPECT_EQ(g[0].body.size(), error_body_length(400));
}

TEST_F(http_session_test, answers_408_to_a_slow_head_request_without_a_body) {
    connect();
    EXPECT_TRUE(exchange("HEAD / HTTP/1.1\r\nHost: t\r\n").empty());
    set_now(session_->deadline_ms());
    deadline();
    std::string raw;
    read_available(raw);
    auto r = parse_responses(raw, {true});
    ASSERT_EQ(r.size(), 1u) << raw;
    EXPECT_EQ(r[0].status, 408);
    EXPECT_EQ(raw.size(), r[0].head.size()) << "a body followed: " << raw;
}

TEST_F(http_session_test, serves_an_absolute_form_target_with_an_empty_host) {
    // RFC 9112 section 3.2.2: the target's authority is used, the Host ignored.
    connect();
    auto r = parse_responses(exchange("GET http://test/a.txt HTTP/1.1\r\nHost:\r\n\r\n"));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body, a_body);
    EXPECT_TRUE(open());
}

TEST_F(http_session_test, grows_its_buffer_for_a_head_up_to_max_header_bytes) {
    settings_->max_header_bytes = 60'000;
    make_service();
    connect();
    auto ok = get("/a.txt", "X-Big: " + std::string(40'000, 'b') + "\r\n");
    ASSERT_EQ(ok.size(), 1u);
    EXPECT_EQ(ok[0].status, 200);
    auto big = get("/a.txt", "X-Big: " + std::string(70'000, 'b') + "\r\n");
    ASSERT_EQ(big.size(), 1u);
    EXPECT_EQ(big[0].status, 431);
}

TEST_F(http_session_test, drains_a_small_body_sent_with_get) {
    connect();
    std::string raw = exchange(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 37\r\n\r\n"
        "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n"  // 37 bytes of body, not a request
        "GET /docs/ HTTP/1.1\r\nHost: test\r\n\r\n");
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].body, a_body);
    EXPECT_EQ(r[1].body, "docs index\n");
}

TEST_F(http_session_test, drains_a_body_that_arrives_in_pieces) {
    connect();
    std::string raw =
        exchange("GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n01234");
    raw += exchange("56789GET /docs/ HTTP/1.1\r\nHost: test\r\n\r\n");
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[1].body, "docs index\n");
}

TEST_F(http_session_test, gives_a_drained_body_one_deadline_that_a_trickle_does_not_move) {
    settings_->header_timeout = std::chrono::milliseconds(10'000);
    connect();
    auto r = parse_responses(
        exchange("GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 65536\r\n\r\nx"));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    const int64_t until = now_ + 10'000;  // from the end of the head
    EXPECT_EQ(session_->deadline_ms(), until);
    // Bytes that each would have bought another 10 s, had the deadline restarted per read.
    for (int64_t at : {until - 9'000, until - 1'000, until - 1}) {
        set_now(at);
        EXPECT_TRUE(exchange("x").empty());
        ASSERT_TRUE(open());
        EXPECT_EQ(session_->deadline_ms(), until);
    }
    set_now(until);
    deadline();
    EXPECT_FALSE(open()) << "a body still arriving at its deadline ends the connection";
}

TEST_F(http_session_test, cuts_off_a_slowloris_at_the_header_deadline) {
    settings_->header_timeout = std::chrono::milliseconds(10'000);
    connect();
    const int64_t start = now_;
    EXPECT_TRUE(exchange("GET / HTTP/1.1\r\n").empty());
    EXPECT_EQ(session_->deadline_ms(), start + 10'000);
    // One byte a second: the deadline does not move.
    const std::string trickle = "X-Slow: aaaaaaa";
    for (size_t i = 0; i < trickle.size() && now_ + 1000 < start + 10'000; ++i) {
        set_now(now_ + 1000);
        EXPECT_TRUE(exchange(trickle.substr(i, 1)).empty());
        ASSERT_TRUE(open());
        EXPECT_EQ(session_->deadline_ms(), start + 10'000);
    }
    set_now(start + 10'000);
    deadline();
    std::string raw;
    read_available(raw);
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 408);
    EXPECT_EQ(r[0]["connection"], "close");
}

TEST_F(http_session_test, times_the_first_head_from_the_accept) {
    settings_->header_timeout = std::chrono::milliseconds(10'000);
    connect();
    const int64_t accepted = now_;
    set_now(accepted + 9'900);  // silent almost all of header_timeout, then a first byte
    EXPECT_TRUE(exchange("GET / HTTP/1.1\r\n").empty());
    ASSERT_TRUE(open());
    EXPECT_EQ(session_->deadline_ms(), accepted + 10'000);
    set_now(accepted + 10'000);
    deadline();
    std::string raw;
    read_available(raw);
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 1u) << raw;
    EXPECT_EQ(r[0].status, 408);
}

TEST_F(http_session_test, times_a_later_head_from_its_first_byte) {
    settings_->header_timeout = std::chrono::milliseconds(10'000);
    settings_->keepalive_timeout = std::chrono::milliseconds(5'000);
    connect();
    set_now(now_ + 3'000);
    ASSERT_EQ(get("/a.txt").size(), 1u);
    EXPECT_EQ(session_->deadline_ms(), now_ + 5'000) << "idle: keepalive_timeout";
    set_now(now_ + 4'000);
    const int64_t first_byte = now_;
    EXPECT_TRUE(exchange("GET /a.txt HTTP/1.1\r\n").empty());
    EXPECT_EQ(session_->deadline_ms(), first_byte + 10'000);
    set_now(now_ + 9'000);
    auto r = parse_responses(exchange("Host: t\r\n\r\n"));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
}

TEST_F(http_session_test, the_deadline_is_not_early) {
    connect();
    exchange("GET / HTTP/1.1\r\n");
    set_now(now_ + 5000);
    deadline();  // a spurious early call changes nothing
    EXPECT_TRUE(open());
    std::string raw;
    read_available(raw);
    EXPECT_TRUE(raw.empty());
}

TEST_F(http_session_test, closes_a_silent_new_connection_at_the_header_timeout) {
    connect();
    EXPECT_EQ(session_->deadline_ms(), now_ + settings_->header_timeout.count());
    set_now(session_->deadline_ms());
    deadline();
    EXPECT_FALSE(open());
    std::string raw;
    read_available(raw);
    EXPECT_TRUE(raw.empty()) << "no 408 to a client that sent nothing";
}

TEST_F(http_session_test, closes_an_idle_keep_alive_connection_silently) {
    settings_->keepalive_timeout = std::chrono::milliseconds(5000);
    connect();
    get("/a.txt");
    EXPECT_EQ(session_->deadline_ms(), now_ + 5000);
    set_now(now_ + 5000);
    deadline();
    EXPECT_FALSE(open());
    std::string raw;
    read_available(raw);
    EXPECT_TRUE(raw.empty());
}

TEST_F(http_session_test, retiring_keeps_an_idle_connection_for_its_next_request) {
    connect();
    get("/a.txt");
    preforkd::detail::context_access::set_retiring(*ctx_);
    ASSERT_TRUE(session_->on_retire());
    std::string raw;
    read_available(raw);
    EXPECT_TRUE(raw.empty());
    EXPECT_FALSE(eof_);
    auto r = get("/a.txt");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body, a_body);
    EXPECT_EQ(r[0]["connection"], "close");
    EXPECT_FALSE(open());
    EXPECT_TRUE(eof_);
}

TEST_F(http_session_test, retiring_finishes_a_request_in_progress_with_close) {
    connect();
    exchange("GET /a.txt HTTP/1.1\r\n");
    ASSERT_TRUE(session_->on_retire());
    auto r = parse_responses(exchange("Host: test\r\n\r\n"));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0]["connection"], "close");
}

TEST_F(http_session_test, retiring_idle_connection_still_ends_at_keepalive_timeout) {
    connect();
    get("/a.txt");
    ASSERT_TRUE(session_->on_retire());
    EXPECT_EQ(session_->deadline_ms(), now_ + settings_->keepalive_timeout.count());
}

TEST_F(http_session_test, sends_a_large_file_whole) {
    connect();
    auto r = get("/big.bin");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0]["content-length"], std::to_string(big_.size()));
    EXPECT_TRUE(r[0].body == big_);
    EXPECT_TRUE(open());
}

TEST_F(http_session_test, closes_a_client_that_stops_reading_at_the_send_timeout) {
    connect();
    send("GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n");
    io();  // the socket buffer fills; the client reads nothing
    ASSERT_TRUE(open());
    EXPECT_TRUE(session_->busy());
    EXPECT_EQ(session_->deadline_ms(), now_ + send_timeout_ms);
    set_now(now_ + send_timeout_ms);
    deadline();
    EXPECT_FALSE(open());
}

TEST_F(http_session_test, http_1_0_closes_unless_it_asks_for_keep_alive) {
    connect();
    auto r = parse_responses(exchange("GET /a.txt HTTP/1.0\r\n\r\n"));
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0]["connection"], "close");
    EXPECT_FALSE(open());
    connect();
    auto k = parse_responses(exchange("GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    ASSERT_EQ(k.size(), 1u);
    EXPECT_EQ(k[0]["connection"], "keep-alive");
    EXPECT_TRUE(open());
}

TEST_F(http_session_test, honours_connection_close_from_the_client) {
    connect();
    auto r = get("/a.txt", "Connection: close\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0]["connection"], "close");
    EXPECT_FALSE(open());
}

TEST_F(http_session_test, closes_after_max_keepalive_requests) {
    settings_->max_keepalive_requests = 2;
    connect();
    auto a = get("/a.txt");
    EXPECT_FALSE(a[0].has("connection"));
    auto b = get("/a.txt");
    EXPECT_EQ(b[0]["connection"], "close");
    EXPECT_FALSE(open());
}

TEST_F(http_session_test, is_busy_from_the_first_byte_until_the_response_is_sent) {
    connect();
    EXPECT_FALSE(session_->busy());
    exchange("GET /a.txt HT");
    EXPECT_TRUE(session_->busy());
    exchange("TP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_FALSE(session_->busy());
}

TEST_F(http_session_test, counts_each_request_in_the_scoreboard) {
    connect();
    get("/a.txt");
    get("/missing");
    EXPECT_EQ(board_.slot(0).requests.load(), 2u);
    EXPECT_GT(board_.slot(0).bytes.load(), 100u);
    EXPECT_EQ(ctx_->requests(), 2u);
}

TEST_F(http_session_test, serves_a_changed_file_after_a_second) {
    connect();
    EXPECT_EQ(get("/a.txt")[0].body, a_body);
    write_file("a.txt", "changed");
    EXPECT_EQ(get("/a.txt")[0].body, a_body) << "cached within the second";
    set_now(now_ + 1000);
    EXPECT_EQ(get("/a.txt")[0].body, "changed");
}

TEST_F(http_session_test, status_page_answers_text_to_allowed_peers) {
    connect("127.0.0.1");
    auto r = get("/server-status");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0]["content-type"], "text/plain; charset=utf-8");
    EXPECT_NE(r[0].body.find("SupervisorPID: 4242\n"), std::string::npos);
    EXPECT_NE(r[0].body.find("Generation: 7\n"), std::string::npos);
    EXPECT_NE(r[0].body.find("Worker: slot=0 pid=" + std::to_string(::getpid())),
              std::string::npos);
}

TEST_F(http_session_test, status_page_answers_json_for_the_json_query) {
    connect("127.0.0.1");
    auto r = get("/server-status?json");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0]["content-type"], "application/json");
    EXPECT_EQ(r[0].body.rfind("{\"supervisor\": {\"pid\": 4242, \"generation\": 7", 0), 0u)
        << r[0].body;
}

TEST_F(http_session_test, status_page_refuses_other_peers) {
    connect("192.0.2.1");
    auto r = get("/server-status");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 403);
}

TEST_F(http_session_test, status_page_can_be_disabled) {
    settings_->status_path = "";
    make_service();
    connect("127.0.0.1");
    EXPECT_EQ(get("/server-status")[0].status, 404);
}

TEST_F(http_session_test, writes_one_combined_log_line_per_request) {
    const std::string log_path = (base_ / "access.log").string();
    unique_fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSERT_TRUE(log_fd.valid());
    preforkd::detail::context_access::set_access_log_fd(*ctx_, log_fd.get());
    connect("127.0.0.1");
    get("/a.txt", "User-Agent: tester \"x\"\r\nReferer: http://r/\r\n");
    get("/missing");
    std::ifstream in(log_path);
    std::string l1, l2, l3;
    std::getline(in, l1);
    std::getline(in, l2);
    EXPECT_FALSE(std::getline(in, l3));
    EXPECT_EQ(l1.rfind("127.0.0.1 - - [", 0), 0u) << l1;
    EXPECT_NE(
        l1.find(" +0000] \"GET /a.txt HTTP/1.1\" 200 100 \"http://r/\" \"tester \\x22x\\x22\""),
        std::string::npos)
        << l1;
    EXPECT_NE(l2.find("\"GET /missing HTTP/1.1\" 404 "), std::string::npos) << l2;
}

// Issue 16 item 6: the session gives the formatter what vhost_combined and json need.
TEST_F(http_session_test, writes_json_log_lines_with_the_tls_version) {
    cfg_.log.access_format = access_log_format::json;
    cfg_.server.listen = {*parse_listen_address("127.0.0.1:8443 tls")};
    const std::string log_path = (base_ / "access.log").string();
    unique_fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSERT_TRUE(log_fd.valid());
    preforkd::detail::context_access::set_access_log_fd(*ctx_, log_fd.get());
    connect("127.0.0.1", "TLSv1.3");
    get("/a.txt?q=1", "User-Agent: t\xc3\xa9st\xff\r\n");
    connect("127.0.0.1");
    get("/missing");
    std::ifstream in(log_path);
    std::string l1, l2;
    std::getline(in, l1);
    std::getline(in, l2);
    EXPECT_EQ(l1.rfind("{\"time\":\"", 0), 0u) << l1;
    EXPECT_NE(l1.find("Z\",\"client\":\"127.0.0.1\",\"host\":\"test\",\"method\":\"GET\","
                      "\"path\":\"/a.txt\",\"query\":\"q=1\",\"status\":200,\"bytes\":100,"
                      "\"referer\":\"\",\"user_agent\":\"t\xc3\xa9st\\ufffd\",\"duration_us\":"),
              std::string::npos)
        << l1;
    EXPECT_NE(l1.find(",\"tls\":\"TLSv1.3\"}"), std::string::npos) << l1;
    EXPECT_NE(l2.find("\"path\":\"/missing\",\"query\":\"\",\"status\":404,"), std::string::npos)
        << l2;
    EXPECT_NE(l2.find(",\"tls\":null}"), std::string::npos) << l2;
}

TEST_F(http_session_test, writes_vhost_combined_lines_with_the_host_or_the_listener) {
    cfg_.log.access_format = access_log_format::vhost_combined;
    cfg_.server.listen = {*parse_listen_address("127.0.0.1:8443")};
    const std::string log_path = (base_ / "access.log").string();
    unique_fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSERT_TRUE(log_fd.valid());
    preforkd::detail::context_access::set_access_log_fd(*ctx_, log_fd.get());
    connect();
    exchange("GET /a.txt HTTP/1.1\r\nHost: WWW.Example.org:99\r\n\r\n");
    connect();
    exchange("GET /a.txt HTTP/1.0\r\n\r\n");
    std::ifstream in(log_path);
    std::string l1, l2;
    std::getline(in, l1);
    std::getline(in, l2);
    EXPECT_EQ(l1.rfind("www.example.org:8443 127.0.0.1 - - [", 0), 0u) << l1;
    EXPECT_EQ(l2.rfind("127.0.0.1:8443 127.0.0.1 - - [", 0), 0u) << l2;
    EXPECT_NE(l2.find("\"GET /a.txt HTTP/1.0\" 200 100 "), std::string::npos) << l2;
}

TEST_F(http_session_test, escapes_the_path_in_the_error_log) {
    // A socket under the root cannot be opened (ENXIO): the answer is 500 and the error
    // log names the path. Its name holds a newline, a backslash and non-ASCII bytes.
    const std::string name = "bad\nline\\\xc3\xa9";
    unique_fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(sock.valid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = (root_ / name).string();
    ASSERT_LT(path.size(), sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

    const std::string log_path = (base_ / "error.log").string();
    unique_fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSERT_TRUE(log_fd.valid());
    log_.adopt(std::move(log_fd), log_path);
    log_.set_level(log_level::error);
    connect();
    auto r = get("/bad%0aline%5c%c3%a9");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 500);

    std::ifstream in(log_path);
    std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    EXPECT_NE(log.find("http: bad\\x0aline\\x5c\\xc3\\xa9: "), std::string::npos) << log;
}

TEST_F(http_session_test, logs_nothing_when_the_access_log_is_off) {
    connect();
    preforkd::detail::context_access::set_access_log_fd(*ctx_, -1);
    EXPECT_EQ(get("/a.txt")[0].status, 200);  // and no write to any fd
}

TEST_F(http_session_test, closes_when_the_peer_closes_after_a_request) {
    connect();
    send("GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    ::shutdown(client_.get(), SHUT_WR);
    auto r = parse_responses(pump());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].body, a_body);
    EXPECT_FALSE(open());
}

// Issue 13 item 9: a request whose FIN comes in the same segment (send, then
// shutdown(SHUT_WR), or TCP_CORK) arrives as one EPOLLIN|EPOLLRDHUP edge. The short read
// that empties the socket must not hide the EOF: answer, then close at once, rather than
// hold the connection until keepalive_timeout.
TEST_F(http_session_test, closes_at_once_after_answering_a_request_sent_with_its_fin) {
    connect();
    ASSERT_EQ(get("/a.txt").size(), 1u);  // a keep-alive connection, idle
    ASSERT_TRUE(open());
    send("GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    ::shutdown(client_.get(), SHUT_WR);
    io(EPOLLIN | EPOLLRDHUP);  // one edge for both: no other comes
    std::string raw;
    read_available(raw);
    auto r = parse_responses(raw);
    ASSERT_EQ(r.size(), 1u) << raw;
    EXPECT_EQ(r[0].body, a_body);
    EXPECT_FALSE(open()) << "the connection waits for its keep-alive timeout";
}

namespace {
std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}
}  // namespace

// Issue 13 item 9: the access log line of a refused head names what was asked (escaped and
// cut), as nginx and Apache log it, rather than "-": an attack leaves a trace.
TEST_F(http_session_test, logs_the_request_line_of_refused_heads) {
    const std::string log_path = (base_ / "access.log").string();
    unique_fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSERT_TRUE(log_fd.valid());
    preforkd::detail::context_access::set_access_log_fd(*ctx_, log_fd.get());
    const std::string long_target = "/" + std::string(9000, 'x');
    const std::vector<std::string> requests = {
        "GET /bad\x01 HTTP/1.1\r\nHost: t\r\n\r\n",                                      // 400
        "GET /ok HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(9000, 'y') + "\r\n\r\n",  // 431
        "GET " + long_target + " HTTP/1.1\r\n\r\n",                                      // 414
    };
    for (const std::string& req : requests) {
        connect();
        exchange(req);
    }
    connect();
    exchange("GET /slow HTTP/1.1\r\nHost: t\r\n");  // then nothing: 408
    set_now(session_->deadline_ms());
    deadline();

    auto lines = read_lines(log_path);
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_NE(lines[0].find("\"GET /bad\\x01 HTTP/1.1\" 400 "), std::string::npos) << lines[0];
    EXPECT_NE(lines[1].find("\"GET /ok HTTP/1.1\" 431 "), std::string::npos) << lines[1];
    const std::string cut =
        "\"GET " + long_target.substr(0, max_logged_request_line - 4) + "\" 414 ";
    EXPECT_NE(lines[2].find(cut), std::string::npos) << lines[2].substr(0, 80);
    EXPECT_LT(lines[2].size(), max_logged_request_line + 200);
    EXPECT_NE(lines[3].find("\"GET /slow HTTP/1.1\" 408 "), std::string::npos) << lines[3];
}

// Issue 13 item 9: a file that shrinks while it is sent cannot keep its Content-Length:
// the connection is cut, and the error log says why at warn.
TEST_F(http_session_test, warns_when_a_file_shrinks_while_it_is_sent) {
    const std::string log_path = (base_ / "error.log").string();
    unique_fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ASSERT_TRUE(log_fd.valid());
    log_.adopt(std::move(log_fd), log_path);
    log_.set_level(log_level::warn);
    connect();
    send("GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n");
    io();  // the socket buffer fills; the client reads nothing yet
    ASSERT_TRUE(open());
    ASSERT_EQ(::truncate((root_ / "big.bin").c_str(), 1000), 0);
    pump();
    EXPECT_FALSE(open());
    auto lines = read_lines(log_path);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("[warn]"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("/big.bin shrank while it was sent"), std::string::npos) << lines[0];
}

// Issue 13 item 5: a worker that cannot serve its docroot (removed since the supervisor
// opened it) gets no service, says why, and leaves the reason in its scoreboard slot: the
// worker then exits with exit_code::fatal.
TEST_F(http_session_test, a_removed_docroot_gives_no_service_and_a_reason) {
    service_.reset();
    std::filesystem::remove_all(root_);
    EXPECT_EQ(make_http_service(*ctx_), nullptr);
    const std::string reason = board_.slot(0).exit_reason;
    EXPECT_NE(reason.find("http.root"), std::string::npos) << reason;
    EXPECT_NE(reason.find("removed"), std::string::npos) << reason;
}
