#include "tls/first_bytes.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace preforkd::tls {
namespace {

first_bytes_kind classify(const std::string& s) {
    return classify_first_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(first_bytes, a_tls_handshake_record_is_recognised_from_three_bytes) {
    EXPECT_EQ(classify(""), first_bytes_kind::need_more);
    EXPECT_EQ(classify("\x16"), first_bytes_kind::need_more);
    EXPECT_EQ(classify("\x16\x03"), first_bytes_kind::need_more);
    EXPECT_EQ(classify(std::string("\x16\x03\x01\x02\x00", 5)), first_bytes_kind::tls_handshake);
    EXPECT_EQ(classify(std::string("\x16\x03\x00", 3)), first_bytes_kind::tls_handshake);
    EXPECT_EQ(classify("\x16\x03\x04"), first_bytes_kind::tls_handshake);
    EXPECT_EQ(classify("\x16\x03\x05"), first_bytes_kind::garbage);
    EXPECT_EQ(classify("\x16\x02\x01"), first_bytes_kind::garbage);
    EXPECT_EQ(classify("\x15\x03\x01"), first_bytes_kind::garbage);  // an alert first
    EXPECT_EQ(classify("\x80\x2e\x01"), first_bytes_kind::garbage);  // SSLv2 hello
}

TEST(first_bytes, a_method_token_and_a_space_is_plain_http) {
    EXPECT_EQ(classify("GET / HTTP/1.1\r\n"), first_bytes_kind::plain_http);
    EXPECT_EQ(classify("G"), first_bytes_kind::need_more);
    EXPECT_EQ(classify("GET"), first_bytes_kind::need_more);
    EXPECT_EQ(classify("GET "), first_bytes_kind::plain_http);
    EXPECT_EQ(classify("PROPPATCH /x"), first_bytes_kind::plain_http);
    EXPECT_EQ(classify("X-CUSTOM_1 /"), first_bytes_kind::plain_http);
    EXPECT_EQ(classify(" GET /"), first_bytes_kind::garbage);
    EXPECT_EQ(classify("GE\x01T"), first_bytes_kind::garbage);
    EXPECT_EQ(classify("\r\nGET /"), first_bytes_kind::garbage);
    EXPECT_EQ(classify(std::string(max_method_length, 'A')), first_bytes_kind::need_more);
    EXPECT_EQ(classify(std::string(max_method_length, 'A') + " "), first_bytes_kind::plain_http);
    EXPECT_EQ(classify(std::string(max_method_length + 1, 'A')), first_bytes_kind::garbage);
}

TEST(first_bytes, the_answer_to_plain_http_is_a_complete_400_that_closes) {
    std::string_view r = plain_http_on_tls_response();
    ASSERT_TRUE(r.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string_view::npos);
    EXPECT_NE(r.find("HTTPS"), std::string_view::npos);
    size_t head_end = r.find("\r\n\r\n");
    ASSERT_NE(head_end, std::string_view::npos);
    std::string_view body = r.substr(head_end + 4);
    EXPECT_NE(r.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
              std::string_view::npos);
}

TEST(first_bytes, peeking_leaves_the_bytes_for_openssl) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    EXPECT_EQ(peek_first_bytes(sv[0]), first_bytes_kind::need_more);  // nothing yet
    ASSERT_EQ(::write(sv[1], "\x16", 1), 1);
    EXPECT_EQ(peek_first_bytes(sv[0]), first_bytes_kind::need_more);
    ASSERT_EQ(::write(sv[1], "\x03\x01", 2), 2);
    EXPECT_EQ(peek_first_bytes(sv[0]), first_bytes_kind::tls_handshake);
    char buf[8];
    EXPECT_EQ(::read(sv[0], buf, sizeof buf), 3);  // all three still there
    ASSERT_EQ(::write(sv[1], "GET / HTTP/1.1\r\n", 16), 16);
    EXPECT_EQ(peek_first_bytes(sv[0]), first_bytes_kind::plain_http);
    EXPECT_EQ(::read(sv[0], buf, sizeof buf), 8);
    EXPECT_EQ(::read(sv[0], buf, sizeof buf), 8);
    ::close(sv[1]);
    EXPECT_EQ(peek_first_bytes(sv[0]), first_bytes_kind::garbage);  // closed before a byte
    ::close(sv[0]);
}

}  // namespace
}  // namespace preforkd::tls
