// Request smuggling and path traversal through the real binary: a request whose framing
// cannot be trusted is answered with an error and the connection closed, so nothing that
// follows it on the connection is ever executed; no target reaches a file outside the root.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {
namespace {

using hardening = server_test;
using namespace std::string_literals;

struct smuggle_case {
    const char* name;
    std::string request;  // the bad request, possibly with a body that hides another one
    int status;
    bool head = false;  // the refused request is a HEAD: its answer has no body
};

std::vector<smuggle_case> smuggle_cases() {
    const std::string host = "Host: x\r\n";
    const std::string hidden = "GET /smuggled-in-body HTTP/1.1\r\nHost: x\r\n\r\n";
    return {
        // RFC 9112 section 6.1 / 6.3: both framings at once, in either order.
        {"cl_then_te",
         "GET /a.txt HTTP/1.1\r\n" + host +
             "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + "0\r\n\r\n" + hidden,
         400},
        {"te_then_cl",
         "GET /a.txt HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: " +
             std::to_string(hidden.size()) + "\r\n\r\n" + hidden,
         400},
        // RFC 9112 section 6.3: a repeated Content-Length, equal or not, or a list.
        {"duplicate_cl_equal",
         "GET /a.txt HTTP/1.1\r\n" + host + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n", 400},
        {"duplicate_cl_different",
         "GET /a.txt HTTP/1.1\r\n" + host + "Content-Length: 0\r\nContent-Length: " +
             std::to_string(hidden.size()) + "\r\n\r\n" + hidden,
         400},
        {"cl_list", "GET /a.txt HTTP/1.1\r\n" + host + "Content-Length: 0, 0\r\n\r\n", 400},
        {"cl_signed", "GET /a.txt HTTP/1.1\r\n" + host + "Content-Length: +0\r\n\r\n", 400},
        // A chunked body on GET is never decoded: 411, and the body is not taken for a request.
        {"te_chunked_on_get",
         "GET /a.txt HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden,
         411},
        {"te_chunked_on_head",
         "HEAD /a.txt HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411,
         true},
        {"te_unknown_coding",
         "GET /a.txt HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
         501},
        {"te_chunked_not_last",
         "GET /a.txt HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"te_in_http10", "GET /a.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        // RFC 9112 section 5.2: obs-fold is refused, including a folded Transfer-Encoding.
        {"obs_fold", "GET /a.txt HTTP/1.1\r\n" + host + "X-Folded: a\r\n b\r\n\r\n", 400},
        {"obs_fold_tab", "GET /a.txt HTTP/1.1\r\n" + host + "X-Folded: a\r\n\tb\r\n\r\n", 400},
        {"obs_fold_te",
         "GET /a.txt HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
        {"space_before_colon",
         "GET /a.txt HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
        // Bare LF: a head framed by LF alone, and an LF that would hide a header from a
        // CRLF-only reader.
        {"bare_lf_head", "GET /a.txt HTTP/1.1\nHost: x\n\n", 400},
        {"bare_lf_end_of_head", "GET /a.txt HTTP/1.1\r\nHost: x\r\n\n", 400},
        {"bare_lf_hides_cl",
         "GET /a.txt HTTP/1.1\r\n" + host +
             "X-Pad: a\nContent-Length: " + std::to_string(hidden.size()) + "\r\n\r\n" + hidden,
         400},
        // Bare CR and NUL anywhere in the head.
        {"bare_cr", "GET /a.txt HTTP/1.1\r\n" + host + "X-Cr: a\rb\r\n\r\n", 400},
        {"nul_in_value", "GET /a.txt HTTP/1.1\r\n" + host + "X-Nul: a\0b\r\n\r\n"s, 400},
        {"nul_in_name", "GET /a.txt HTTP/1.1\r\n" + host + "X-\0: a\r\n\r\n"s, 400},
        {"nul_in_target", "GET /a.txt\0 HTTP/1.1\r\nHost: x\r\n\r\n"s, 400},
        {"two_hosts", "GET /a.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
        {"no_host_11", "GET /a.txt HTTP/1.1\r\n\r\n", 400},
    };
}

TEST_F(hardening, a_request_with_untrustworthy_framing_is_refused_and_nothing_after_it_runs) {
    write_file(dir_.path() / "www/a.txt", "AAA");
    start();
    int n = 0;
    for (const auto& c : smuggle_cases()) {
        SCOPED_TRACE(c.name);
        // The second request has a path of its own: if it ever ran, the access log says so.
        const std::string marker = "/smuggled-" + std::to_string(n++) + "-" + c.name;
        const std::string follow = "GET " + marker + " HTTP/1.1\r\nHost: x\r\n\r\n";
        auto r = send_raw(port_, c.request + follow, c.head);
        ASSERT_EQ(r.responses.size(), 1u) << "the server answered more than the bad request";
        EXPECT_EQ(r.responses[0].status, c.status);
        EXPECT_EQ(r.responses[0].header("connection"), "close");
        EXPECT_TRUE(r.closed) << "connection left open after a refused request";
        EXPECT_EQ(r.trailing, "");
        EXPECT_EQ(count_access_lines(*srv_, "/smuggled-"), 0u)
            << read_file(srv_->access_log_path());
    }
    // The worker that refused them all still serves everyone.
    auto ok = http_get(port_, "/a.txt");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    EXPECT_EQ(ok->body, "AAA");
}

TEST_F(hardening, a_body_framed_by_content_length_is_skipped_not_executed) {
    // The positive side of the same rule: a GET with a Content-Length body has that body
    // read past; the request that follows the body is the next request.
    write_file(dir_.path() / "www/a.txt", "AAA");
    write_file(dir_.path() / "www/b.txt", "BBB");
    start();
    const std::string hidden = "GET /smuggled-in-body HTTP/1.1\r\nHost: x\r\n\r\n";
    auto r = send_raw(port_, "GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                 std::to_string(hidden.size()) + "\r\n\r\n" + hidden +
                                 "GET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(r.responses.size(), 2u);
    EXPECT_EQ(r.responses[0].body, "AAA");
    EXPECT_EQ(r.responses[1].body, "BBB");
    EXPECT_EQ(count_access_lines(*srv_, "/smuggled-"), 0u);
    EXPECT_EQ(count_access_lines(*srv_, "\"GET /b.txt HTTP/1.1\" 200"), 1u);
}

TEST_F(hardening, no_target_serves_a_file_outside_the_root) {
    const std::string secret = "SECRET-outside-the-root-7f3a";
    write_file(dir_.path() / "secret.txt", secret);
    write_file(dir_.path() / "outside/secret.txt", secret);
    write_file(dir_.path() / "www/docs/page.txt", "inside");
    fs::create_directories(dir_.path() / "www");
    // Symlinks that lead out: to a file, to a folder, to the filesystem root.
    fs::create_symlink(dir_.path() / "secret.txt", dir_.path() / "www/link.txt");
    fs::create_symlink(dir_.path() / "outside", dir_.path() / "www/linkdir");
    fs::create_symlink("../secret.txt", dir_.path() / "www/relative-link.txt");
    fs::create_symlink("/", dir_.path() / "www/slash");
    start();

    const std::vector<std::string> targets = {
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/docs/../../secret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "//../secret.txt",
        "/./../secret.txt",
        "/..\\secret.txt",
        "/secret.txt%00",
        "/%00/../secret.txt",
        "/docs/page.txt%00.html",
        "/link.txt",
        "/relative-link.txt",
        "/linkdir/secret.txt",
        "/slash" + dir_.path().string() + "/secret.txt",
        "http://x/../secret.txt",
        "http://x/%2e%2e/secret.txt",
        "http://x/docs/../../secret.txt",
        "http://x/link.txt",
    };
    for (const auto& t : targets) {
        for (const char* method : {"GET", "HEAD"}) {
            SCOPED_TRACE(std::string(method) + " " + t);
            auto r = http_get(port_, t, "", method);
            ASSERT_TRUE(r);
            EXPECT_TRUE(r->status == 400 || r->status == 404) << r->status;
            EXPECT_EQ(r->body.find(secret), std::string::npos);
            EXPECT_NE(r->header("content-length"), std::to_string(secret.size()));
        }
    }
    // Control: the same server does serve what is inside, by every spelling of it.
    for (const char* t : {"/docs/page.txt", "/docs/./page.txt", "/docs/x/../page.txt",
                          "/%64ocs/page.txt", "http://x/docs/page.txt", "//docs//page.txt"}) {
        auto r = http_get(port_, t);
        ASSERT_TRUE(r) << t;
        EXPECT_EQ(r->status, 200) << t;
        EXPECT_EQ(r->body, "inside") << t;
    }
}

// Issue 13 item 9: a request whose FIN comes in the same segment (TCP_CORK, then
// shutdown(SHUT_WR): one segment for both) reaches an idle keep-alive connection as one
// wake-up. The server answers and closes at once, as nginx does, instead of holding the
// connection until keepalive_timeout.
TEST_F(hardening, a_request_sent_with_its_fin_is_answered_and_closed_at_once) {
    cfg_.set("http", "keepalive_timeout", "\"10s\"");
    start();
    const int fd = connect_loopback(port_);
    ASSERT_GE(fd, 0);
    timeval tv{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string req = "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    // The first answer: head and the 15-byte index.html.
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos ||
           got.size() < got.find("\r\n\r\n") + 4 + 15) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(n, 0) << got;
        got.append(buf, static_cast<size_t>(n));
    }
    ::usleep(200 * 1000);  // the worker is back in epoll_wait, the connection idle

    int one = 1;
    ASSERT_EQ(::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one), 0);
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    const auto sent = std::chrono::steady_clock::now();
    ::shutdown(fd, SHUT_WR);  // flushes the corked request with the FIN
    std::string second;
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) second.append(buf, static_cast<size_t>(n));
    const auto took = std::chrono::steady_clock::now() - sent;
    ::close(fd);
    EXPECT_EQ(n, 0) << "no EOF: " << std::strerror(errno);
    EXPECT_EQ(second.rfind("HTTP/1.1 200 ", 0), 0u) << second;
    EXPECT_LT(took, std::chrono::seconds(3)) << "the connection waited for keepalive_timeout";
}

}  // namespace
}  // namespace preforkd::test
