// PROXY protocol on a `proxy` listener through the real binary: v1 and v2 headers give the
// access log the header's address, for every request of a keep-alive connection (gunicorn
// #899 lost it after the first); a v2 LOCAL header keeps the peer's own; an untrusted peer
// and a malformed header are closed without an answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {
namespace {

using proxy_protocol = server_test;

// Sends `bytes` from `source` (a loopback address) and returns everything read until the
// server closes or is quiet for 1.5 s.
std::string exchange_from(const char* source, uint16_t port, const std::string& bytes,
                          bool* closed = nullptr) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &src.sin_addr);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src), 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 0);
    EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    std::string out;
    bool eof = false;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 1500) <= 0) break;
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            eof = true;
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    if (closed) *closed = eof;
    return out;
}

std::string v2_header(bool local) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += static_cast<char>(local ? 0x20 : 0x21);
    h += static_cast<char>(local ? 0x00 : 0x11);  // TCP over IPv4
    std::string body;
    if (!local) {
        const unsigned char addrs[12] = {198, 51, 100, 9, 127, 0, 0, 1, 0x30, 0x39, 0x1f, 0x90};
        body.assign(reinterpret_cast<const char*>(addrs), sizeof addrs);
        body += std::string("\x04\x00\x02xy", 5);  // a NOOP TLV, skipped
    }
    h += static_cast<char>(body.size() >> 8);
    h += static_cast<char>(body.size() & 0xff);
    return h + body;
}

const std::string get_close = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
const std::string get_keep = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

size_t wait_access_lines(const server& srv, const std::string& needle, size_t want) {
    size_t n = 0;
    for (int i = 0; i < 30 && (n = count_access_lines(srv, needle)) < want; ++i)
        std::this_thread::sleep_for(100ms);
    return n;
}

class proxy_listener : public proxy_protocol {
  protected:
    void start_proxy(const std::string& trusted = "") {
        cfg_.set("server", "listen", "[\"127.0.0.1:" + std::to_string(port_) + " proxy\"]");
        if (!trusted.empty()) cfg_.set("server", "proxy_trusted", trusted);
        start();
    }
};

TEST_F(proxy_listener, v1_header_gives_the_access_log_its_source_for_every_keepalive_request) {
    start_proxy();
    std::string out =
        exchange_from("127.0.0.1", port_,
                      "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n" + get_keep + get_close);
    EXPECT_EQ(out.find("HTTP/1.1 200"), 0u) << out;
    EXPECT_NE(out.find("HTTP/1.1 200", 1), std::string::npos) << out;
    EXPECT_EQ(wait_access_lines(*srv_, "203.0.113.7 ", 2), 2u);
    EXPECT_EQ(count_access_lines(*srv_, "127.0.0.1 "), 0u);
}

TEST_F(proxy_listener, v2_header_gives_its_source_and_v2_local_keeps_the_peer) {
    start_proxy();
    std::string out = exchange_from("127.0.0.1", port_, v2_header(false) + get_close);
    EXPECT_EQ(out.find("HTTP/1.1 200"), 0u) << out;
    EXPECT_EQ(wait_access_lines(*srv_, "198.51.100.9 ", 1), 1u);
    out = exchange_from("127.0.0.1", port_, v2_header(true) + get_close);
    EXPECT_EQ(out.find("HTTP/1.1 200"), 0u) << out;
    EXPECT_EQ(wait_access_lines(*srv_, "127.0.0.1 ", 1), 1u);
}

TEST_F(proxy_listener, an_untrusted_peer_is_closed_without_an_answer) {
    start_proxy("[\"127.0.0.1/32\"]");
    bool closed = false;
    std::string out = exchange_from(
        "127.0.0.2", port_, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n" + get_close, &closed);
    EXPECT_EQ(out, "");
    EXPECT_TRUE(closed);
    // Trusted, the same bytes are served.
    out = exchange_from("127.0.0.1", port_,
                        "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n" + get_close);
    EXPECT_EQ(out.find("HTTP/1.1 200"), 0u) << out;
    EXPECT_EQ(wait_access_lines(*srv_, "203.0.113.7 ", 1), 1u);
}

TEST_F(proxy_listener, a_malformed_or_missing_header_is_closed_without_an_answer) {
    start_proxy();
    bool closed = false;
    std::string out =
        exchange_from("127.0.0.1", port_, "PROXY TCP4 nonsense here\r\n" + get_close, &closed);
    EXPECT_EQ(out, "");
    EXPECT_TRUE(closed);
    out = exchange_from("127.0.0.1", port_, get_close, &closed);
    EXPECT_EQ(out, "");
    EXPECT_TRUE(closed);
    EXPECT_EQ(count_access_lines(*srv_, "GET"), 0u);
}

}  // namespace
}  // namespace preforkd::test
