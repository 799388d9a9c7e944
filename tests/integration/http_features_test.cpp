// Each HTTP feature of DESIGN.md through the real binary: validators and 304, ranges, the
// folder redirect, index files, Date and Server, types from /etc/mime.types, dotfiles, the
// error statuses, HEAD, and keep-alive in HTTP/1.0 and 1.1.
#include <time.h>

#include <fstream>
#include <sstream>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {
namespace {

using http_features = server_test;

// IMF-fixdate (RFC 9110 section 5.6.7) to seconds since the epoch; -1 if malformed.
time_t parse_imf_fixdate(const std::string& s) {
    struct tm tm {};
    const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0' || s.size() != 29) return -1;
    return ::timegm(&tm);
}

std::string imf_fixdate(time_t t) {
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

TEST_F(http_features, etag_and_last_modified_answer_conditional_requests_with_304) {
    write_file(dir_.path() / "www/page.html", "<p>cached</p>");
    start();
    auto first = http_get(port_, "/page.html");
    ASSERT_TRUE(first);
    ASSERT_EQ(first->status, 200);
    const std::string etag = first->header("etag");
    const std::string last_modified = first->header("last-modified");
    ASSERT_FALSE(etag.empty());
    ASSERT_EQ(etag.front(), '"');  // a strong validator
    ASSERT_NE(parse_imf_fixdate(last_modified), -1) << last_modified;

    auto inm = http_get(port_, "/page.html", "If-None-Match: " + etag + "\r\n");
    ASSERT_TRUE(inm);
    EXPECT_EQ(inm->status, 304);
    EXPECT_EQ(inm->header("etag"), etag);
    EXPECT_TRUE(inm->body.empty());
    auto weak = http_get(port_, "/page.html", "If-None-Match: \"other\", W/" + etag + "\r\n");
    ASSERT_TRUE(weak);
    EXPECT_EQ(weak->status, 304) << "If-None-Match compares weakly (RFC 9110 section 13.1.2)";
    auto star = http_get(port_, "/page.html", "If-None-Match: *\r\n");
    ASSERT_TRUE(star);
    EXPECT_EQ(star->status, 304);
    auto other = http_get(port_, "/page.html", "If-None-Match: \"not-it\"\r\n");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 200);
    EXPECT_EQ(other->body, "<p>cached</p>");

    auto ims = http_get(port_, "/page.html", "If-Modified-Since: " + last_modified + "\r\n");
    ASSERT_TRUE(ims);
    EXPECT_EQ(ims->status, 304);
    EXPECT_TRUE(ims->body.empty());
    auto later = http_get(port_, "/page.html",
                          "If-Modified-Since: " + imf_fixdate(::time(nullptr) + 3600) + "\r\n");
    ASSERT_TRUE(later);
    EXPECT_EQ(later->status, 304);
    auto older = http_get(
        port_, "/page.html",
        "If-Modified-Since: " + imf_fixdate(parse_imf_fixdate(last_modified) - 60) + "\r\n");
    ASSERT_TRUE(older);
    EXPECT_EQ(older->status, 200);
    // RFC 9110 section 13.2.2: If-None-Match decides when both are present.
    auto both =
        http_get(port_, "/page.html",
                 "If-None-Match: \"not-it\"\r\nIf-Modified-Since: " + last_modified + "\r\n");
    ASSERT_TRUE(both);
    EXPECT_EQ(both->status, 200);
}

TEST_F(http_features, a_single_range_is_206_and_a_range_past_the_end_is_416) {
    const std::string small = "0123456789";
    const std::string large = random_bytes(200 * 1024 + 3, 7);  // past the in-memory limit
    write_file(dir_.path() / "www/digits.txt", small);
    write_file(dir_.path() / "www/large.bin", large);
    start();
    struct want {
        std::string file, range;
        int status;
        uint64_t first, length;
    };
    const uint64_t big = large.size();
    for (const want& w : std::vector<want>{
             {"digits.txt", "bytes=2-5", 206, 2, 4},
             {"digits.txt", "bytes=7-", 206, 7, 3},
             {"digits.txt", "bytes=-3", 206, 7, 3},
             {"digits.txt", "bytes=5-100", 206, 5, 5},
             {"large.bin", "bytes=100000-150000", 206, 100000, 50001},
             {"large.bin", "bytes=-10", 206, big - 10, 10},
         }) {
        SCOPED_TRACE(w.file + " " + w.range);
        const std::string& body = w.file == "digits.txt" ? small : large;
        auto r = http_get(port_, "/" + w.file, "Range: " + w.range + "\r\n");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, w.status);
        EXPECT_EQ(r->header("content-range"), "bytes " + std::to_string(w.first) + "-" +
                                                  std::to_string(w.first + w.length - 1) + "/" +
                                                  std::to_string(body.size()));
        EXPECT_EQ(r->header("content-length"), std::to_string(w.length));
        EXPECT_TRUE(r->body == body.substr(w.first, w.length));
    }
    auto past = http_get(port_, "/digits.txt", "Range: bytes=10-20\r\n");
    ASSERT_TRUE(past);
    EXPECT_EQ(past->status, 416);
    EXPECT_EQ(past->header("content-range"), "bytes */10");
    // Several ranges or another unit: the whole file (a server may ignore Range).
    auto multi = http_get(port_, "/digits.txt", "Range: bytes=0-1,4-5\r\n");
    ASSERT_TRUE(multi);
    EXPECT_EQ(multi->status, 200);
    EXPECT_EQ(multi->body, small);
    // If-Range with a stale validator: the whole, current file.
    auto stale = http_get(port_, "/digits.txt", "Range: bytes=2-5\r\nIf-Range: \"stale\"\r\n");
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->status, 200);
    EXPECT_EQ(stale->body, small);
    auto etag = http_get(port_, "/digits.txt")->header("etag");
    auto fresh = http_get(port_, "/digits.txt", "Range: bytes=2-5\r\nIf-Range: " + etag + "\r\n");
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->status, 206);
    EXPECT_EQ(fresh->body, "2345");
}

TEST_F(http_features, a_folder_without_its_slash_is_301_and_with_it_serves_the_index) {
    write_file(dir_.path() / "www/docs/index.html", "docs index");
    write_file(dir_.path() / "www/index.html", "root index");
    fs::create_directories(dir_.path() / "www/empty");
    cfg_.set("http", "index", "[\"missing.html\", \"index.html\"]");
    start();
    auto r = http_get(port_, "/docs");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 301);
    EXPECT_EQ(r->header("location"), "/docs/");
    auto q = http_get(port_, "/docs?x=1");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->status, 301);
    EXPECT_EQ(q->header("location"), "/docs/?x=1");
    auto idx = http_get(port_, "/docs/");
    ASSERT_TRUE(idx);
    EXPECT_EQ(idx->status, 200);
    EXPECT_EQ(idx->body, "docs index");
    EXPECT_EQ(idx->header("content-type").rfind("text/html", 0), 0u);
    auto root = http_get(port_, "/");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->status, 200);
    EXPECT_EQ(root->body, "root index");
    auto empty = http_get(port_, "/empty/");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->status, 403) << "no listing of a folder without an index";
    auto file_slash = http_get(port_, "/index.html/");
    ASSERT_TRUE(file_slash);
    EXPECT_EQ(file_slash->status, 404);
}

TEST_F(http_features, every_response_carries_date_and_server) {
    start();
    for (const char* target : {"/", "/missing", "/../x"}) {
        auto r = http_get(port_, target);
        ASSERT_TRUE(r) << target;
        time_t date = parse_imf_fixdate(r->header("date"));
        ASSERT_NE(date, -1) << target << ": " << r->header("date");
        EXPECT_LE(std::abs(static_cast<long>(date - ::time(nullptr))), 5L) << target;
        EXPECT_EQ(r->header("server").rfind("preforkd/", 0), 0u) << target;
    }
}

// The type /etc/mime.types gives an extension, read the way a user would read the file.
std::string system_mime_type(const std::string& ext) {
    std::ifstream in("/etc/mime.types");
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream words(line);
        std::string type, e;
        words >> type;
        while (words >> e)
            if (e == ext) return type;
    }
    return {};
}

TEST_F(http_features, content_type_comes_from_etc_mime_types) {
    // Extensions the built-in fallback table does not know: only the file can name them.
    const std::vector<std::string> exts = {"odt", "tar", "py"};
    for (const auto& e : exts) write_file(dir_.path() / ("www/f." + e), "x");
    write_file(dir_.path() / "www/style.css", "body{}");
    write_file(dir_.path() / "www/unknown.zzqq", "x");
    start();
    size_t checked = 0;
    for (const auto& e : exts) {
        std::string want = system_mime_type(e);
        if (want.empty()) continue;
        auto r = http_get(port_, "/f." + e);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->header("content-type").substr(0, want.size()), want) << e;
        ++checked;
    }
    if (checked == 0) GTEST_SKIP() << "/etc/mime.types is missing (Debian package media-types)";
    auto css = http_get(port_, "/style.css");
    ASSERT_TRUE(css);
    EXPECT_EQ(css->header("content-type").rfind("text/css", 0), 0u);
    auto unknown = http_get(port_, "/unknown.zzqq");
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->header("content-type"), "application/octet-stream");
}

TEST_F(http_features, dotfiles_are_404_by_default) {
    write_file(dir_.path() / "www/.env", "PASSWORD=x");
    write_file(dir_.path() / "www/.git/config", "[core]");
    write_file(dir_.path() / "www/dir/.hidden", "h");
    start();
    for (const char* t : {"/.env", "/.git/config", "/.git/", "/dir/.hidden", "/%2eenv"}) {
        auto r = http_get(port_, t);
        ASSERT_TRUE(r) << t;
        EXPECT_EQ(r->status, 404) << t;
        EXPECT_EQ(r->body.find("PASSWORD"), std::string::npos) << t;
    }
}

TEST_F(http_features, dotfiles_are_served_with_serve_hidden) {
    write_file(dir_.path() / "www/.env", "PASSWORD=x");
    write_file(dir_.path() / "www/.well-known/security.txt", "Contact: x");
    cfg_.set("http", "serve_hidden", "true");
    start();
    auto env = http_get(port_, "/.env");
    ASSERT_TRUE(env);
    EXPECT_EQ(env->status, 200);
    EXPECT_EQ(env->body, "PASSWORD=x");
    auto wk = http_get(port_, "/.well-known/security.txt");
    ASSERT_TRUE(wk);
    EXPECT_EQ(wk->status, 200);
}

TEST_F(http_features, methods_other_than_get_and_head_are_405_with_allow_or_501) {
    start();
    for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
        auto r = send_raw(port_, std::string(m) + " /index.html HTTP/1.1\r\nHost: x\r\n" +
                                     "Content-Length: 0\r\n\r\n");
        ASSERT_EQ(r.responses.size(), 1u) << m;
        EXPECT_EQ(r.responses[0].status, 405) << m;
        EXPECT_EQ(r.responses[0].header("allow"), "GET, HEAD") << m;
        EXPECT_TRUE(r.closed) << m;
    }
    auto brew = send_raw(port_, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(brew.responses.size(), 1u);
    EXPECT_EQ(brew.responses[0].status, 501);
}

TEST_F(http_features, oversized_heads_and_unknown_versions_get_their_status) {
    start();
    struct want {
        const char* name;
        std::string request;
        int status;
    };
    for (const want& w : std::vector<want>{
             {"huge target", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
              414},
             {"huge header",
              "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'b') + "\r\n\r\n", 431},
             {"many headers",
              [] {
                  std::string s = "GET / HTTP/1.1\r\nHost: x\r\n";
                  for (int i = 0; i < 600; ++i) s += "X-H" + std::to_string(i) + ": vvvvvvvv\r\n";
                  return s + "\r\n";
              }(),
              431},
             // A body on GET is read past up to 64 KiB; a larger one is not worth reading.
             {"large body on GET", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
              413},
             {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
             {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
             {"lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
             {"two spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
             {"TLS handshake", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
              400},
         }) {
        SCOPED_TRACE(w.name);
        auto r = send_raw(port_, w.request);
        ASSERT_EQ(r.responses.size(), 1u);
        EXPECT_EQ(r.responses[0].status, w.status);
        EXPECT_EQ(r.responses[0].header("connection"), "close");
        EXPECT_TRUE(r.closed);
    }
    auto ok = http_get(port_, "/");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST_F(http_features, an_incomplete_head_gets_408_after_header_timeout) {
    cfg_.set("http", "header_timeout", "\"1s\"");
    start();
    http_client c(port_, 5s);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n"));
    auto r = c.read_response();
    auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 408);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_GE(elapsed, 900ms);
    EXPECT_LE(elapsed, 3s);
    EXPECT_TRUE(c.closed_by_peer(2s));
    // A connection that never sends a byte is closed without a response.
    http_client silent(port_, 5s);
    EXPECT_TRUE(silent.closed_by_peer(4s));
    EXPECT_EQ(silent.read_all(), "");
}

TEST_F(http_features, head_has_exactly_the_headers_of_get) {
    write_file(dir_.path() / "www/page.html", "<p>page</p>");
    write_file(dir_.path() / "www/big.bin", random_bytes(100 * 1024, 3));
    fs::create_directories(dir_.path() / "www/dir");
    start();
    for (const std::string t : {"/page.html", "/big.bin", "/missing", "/dir", "/server-status"}) {
        for (const std::string extra : {"", "If-None-Match: *\r\n"}) {
            SCOPED_TRACE(t + " " + extra);
            auto get = http_get(port_, t, extra);
            auto head = http_get(port_, t, extra, "HEAD");
            ASSERT_TRUE(get && head);
            EXPECT_EQ(head->status, get->status);
            EXPECT_TRUE(head->body.empty());
            auto g = get->headers, h = head->headers;
            g.erase("date");  // may tick between the two
            h.erase("date");
            if (t == "/server-status") {  // the counters move between the two requests
                EXPECT_EQ(h.at("content-type"), g.at("content-type"));
                continue;
            }
            EXPECT_EQ(h, g);
        }
    }
}

TEST_F(http_features, keep_alive_follows_the_version_and_the_connection_header) {
    write_file(dir_.path() / "www/a.txt", "abc");
    start();
    {  // HTTP/1.0 asking for keep-alive: kept, and says so.
        http_client c(port_);
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(c.send("GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
            auto r = c.read_response();
            ASSERT_TRUE(r) << i;
            EXPECT_EQ(r->status, 200);
            EXPECT_EQ(r->header("connection"), "keep-alive");
        }
    }
    {  // HTTP/1.0 without it: closed after the response.
        http_client c(port_);
        ASSERT_TRUE(c.send("GET /a.txt HTTP/1.0\r\n\r\n"));
        auto r = c.read_response();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->header("connection"), "close");
        EXPECT_TRUE(c.closed_by_peer(2s));
    }
    {  // HTTP/1.1: persistent unless it says close.
        http_client c(port_);
        ASSERT_TRUE(c.send("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto r = c.read_response();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->header("connection"), "");
        EXPECT_FALSE(c.closed_by_peer(300ms));
        ASSERT_TRUE(c.send("GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        auto last = c.read_response();
        ASSERT_TRUE(last);
        EXPECT_EQ(last->header("connection"), "close");
        EXPECT_TRUE(c.closed_by_peer(2s));
    }
}

TEST_F(http_features, pipelined_requests_are_answered_in_order) {
    write_file(dir_.path() / "www/1.txt", "one");
    write_file(dir_.path() / "www/2.txt", "two");
    write_file(dir_.path() / "www/3.txt", "three");
    start();
    http_client c(port_);
    ASSERT_TRUE(
        c.send("GET /1.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               "HEAD /2.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /3.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    auto a = c.read_response();
    auto b = c.read_response(true);
    auto m = c.read_response();
    auto d = c.read_response();
    ASSERT_TRUE(a && b && m && d);
    EXPECT_EQ(a->body, "one");
    EXPECT_EQ(b->status, 200);
    EXPECT_EQ(b->header("content-length"), "3");
    EXPECT_EQ(m->status, 404);
    EXPECT_EQ(d->body, "three");
    EXPECT_TRUE(c.closed_by_peer(2s));
}

TEST_F(http_features, max_keepalive_requests_closes_the_connection_after_the_last) {
    write_file(dir_.path() / "www/a.txt", "abc");
    cfg_.set("http", "max_keepalive_requests", "3");
    start();
    http_client c(port_);
    for (int i = 1; i <= 3; ++i) {
        ASSERT_TRUE(c.send("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto r = c.read_response();
        ASSERT_TRUE(r) << i;
        EXPECT_EQ(r->header("connection"), i == 3 ? "close" : "") << i;
    }
    EXPECT_TRUE(c.closed_by_peer(2s));
}

}  // namespace
}  // namespace preforkd::test
