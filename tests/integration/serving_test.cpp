// Serving files through the real binary: bytes, HEAD, 404, keep-alive, index, traversal.

#include "integration/fixture.hpp"

namespace preforkd::test {
namespace {

using serving = server_test;

TEST_F(serving, get_returns_the_exact_bytes_of_small_and_large_files) {
    std::string small = "hello, preforkd\n";
    std::string large = random_bytes(3 * 1024 * 1024 + 7, 1);
    write_file(dir_.path() / "www/small.txt", small);
    write_file(dir_.path() / "www/large.bin", large);
    start();
    auto r = http_get(port_, "/small.txt");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, small);
    EXPECT_EQ(r->header("content-length"), std::to_string(small.size()));
    EXPECT_EQ(r->header("content-type").rfind("text/plain", 0), 0u) << r->header("content-type");
    auto big = http_get(port_, "/large.bin");
    ASSERT_TRUE(big);
    EXPECT_EQ(big->status, 200);
    EXPECT_TRUE(big->body == large) << "large body differs (" << big->body.size() << " bytes)";
}

TEST_F(serving, head_has_the_headers_of_get_and_no_body) {
    write_file(dir_.path() / "www/page.html", "<p>x</p>");
    start();
    http_client c(port_);
    ASSERT_TRUE(
        c.send("HEAD /page.html HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto head = c.read_response(true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->header("content-length"), "8");
    EXPECT_TRUE(head->body.empty());
    // If HEAD had sent a body, it would be read here as the next response's status line.
    auto get = c.read_response();
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200);
    EXPECT_EQ(get->body, "<p>x</p>");
}

TEST_F(serving, missing_file_is_404) {
    start();
    auto r = http_get(port_, "/no/such/file.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
}

TEST_F(serving, other_methods_are_405_or_501) {
    start();
    auto post = http_get(port_, "/index.html", "Content-Length: 0\r\n", "POST");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 405);
    EXPECT_NE(post->header("allow").find("GET"), std::string::npos);
}

TEST_F(serving, malformed_request_is_400_and_other_clients_are_still_served) {
    start();
    http_client bad(port_);
    ASSERT_TRUE(bad.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n"));
    auto r = bad.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(r->header("connection"), "close");
    auto good = http_get(port_, "/index.html");
    ASSERT_TRUE(good);
    EXPECT_EQ(good->status, 200);
}

TEST_F(serving, keep_alive_serves_100_requests_on_one_connection) {
    write_file(dir_.path() / "www/a.txt", "abc");
    start();
    http_client c(port_);
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(c.send("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto r = c.read_response();
        ASSERT_TRUE(r) << "request " << i;
        ASSERT_EQ(r->status, 200);
        ASSERT_EQ(r->body, "abc");
    }
}

TEST_F(serving, directory_serves_its_index_file) {
    write_file(dir_.path() / "www/docs/index.html", "docs index");
    start();
    auto r = http_get(port_, "/docs/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "docs index");
}

TEST_F(serving, no_path_escapes_the_root) {
    write_file(dir_.path() / "secret.txt", "SECRET");
    start();
    for (const char* target : {"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                               "/./../secret.txt", "/docs/../../secret.txt"}) {
        auto r = http_get(port_, target);
        ASSERT_TRUE(r) << target;
        EXPECT_NE(r->status, 200) << target;
        EXPECT_EQ(r->body.find("SECRET"), std::string::npos) << target;
    }
    fs::create_symlink(dir_.path() / "secret.txt", dir_.path() / "www/link.txt");
    auto r = http_get(port_, "/link.txt");
    ASSERT_TRUE(r);
    EXPECT_NE(r->status, 200);
    EXPECT_EQ(r->body.find("SECRET"), std::string::npos);
}

}  // namespace
}  // namespace preforkd::test
