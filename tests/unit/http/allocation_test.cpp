// Counts heap allocations made while a warm session answers requests: the hot path must
// make none (the performance goal; see src/http/session.hpp).
#include <cstdlib>
#include <new>

// g++ 12 pairs the replaced operator delete below with allocations it inlines elsewhere in
// this file (the config's default proxy_trusted vector made it do so) and misreads
// malloc/free as mismatched; the noinline helper alone no longer avoids it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include "session_fixture.hpp"

namespace {
// Plain counter: the test binary is single-threaded while it reads it.
std::size_t allocation_count = 0;
std::size_t watched_size = 0;  // allocations of exactly this size are counted apart
std::size_t watched_count = 0;

// Out of line: inlined into operator new, g++ 12 misreads the malloc/free pairing below
// (-Wmismatched-new-delete).
[[gnu::noinline]] void count_allocation(std::size_t n) noexcept {
    ++allocation_count;
    if (n == watched_size) ++watched_count;
}
}  // namespace

void* operator new(std::size_t n) {
    count_allocation(n);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// The nothrow forms too (std::stable_sort's temporary buffer uses them): under ASan an
// allocation by its own nothrow new, freed by the delete above, is reported as
// alloc-dealloc-mismatch (operator new vs free).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    count_allocation(n);
    return std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

using namespace preforkd;
using namespace preforkd::http;
using namespace preforkd::http::testing;

class allocation_test : public session_fixture {
  protected:
    // Allocations made by the session alone while it answers `request` (sent beforehand).
    std::size_t allocations_for(const std::string& request) {
        send(request);
        const std::size_t before = allocation_count;
        io();
        const std::size_t after = allocation_count;
        std::string sink;
        sink.reserve(1 << 20);
        read_available(sink);
        EXPECT_NE(sink.find("HTTP/1.1 "), std::string::npos);
        return after - before;
    }
};

TEST_F(allocation_test, a_warm_keep_alive_request_allocates_nothing) {
    connect();
    const std::string req = "GET /a.txt HTTP/1.1\r\nHost: test\r\nUser-Agent: x\r\n\r\n";
    EXPECT_GT(allocations_for(req), 0u) << "the first request fills the cache: counted";
    for (int i = 0; i < 2; ++i) allocations_for(req);
    EXPECT_EQ(allocations_for(req), 0u);
}

TEST_F(allocation_test, a_new_connection_on_a_warm_worker_allocates_only_its_session) {
    // Connection: close per request, as scenario (c) of tests/bench does: the input and
    // output buffers come back from the service's spares, the cache entry and its head
    // are warm, so the session object is the only allocation.
    const std::string req = "GET /a.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    std::size_t last = 0;
    for (int i = 0; i < 4; ++i) {
        const std::size_t before = allocation_count;
        connect();
        send(req);
        io();
        last = allocation_count - before;
        std::string sink;
        read_available(sink);
        ASSERT_NE(sink.find("HTTP/1.1 200 OK"), std::string::npos);
        ASSERT_FALSE(open()) << "Connection: close ends the session";
    }
    EXPECT_EQ(last, 1u);
}

TEST_F(allocation_test, idle_keep_alive_connections_hold_no_input_buffer) {
    // Twenty keep-alive connections answered in turn: each borrows the service's input
    // buffer for its request and gives it back when it waits again, so one buffer serves
    // them all (holding their own, they would need twenty). Afterwards nothing at all is
    // allocated.
    struct peer {
        unique_fd client;
        std::unique_ptr<plain_transport> io;  // declared first: destroyed after the session
        std::unique_ptr<session> s;
    };
    std::vector<peer> peers(20);
    for (auto& p : peers) {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        p.client.reset(sv[0]);
        accepted_connection c;
        p.io = std::make_unique<plain_transport>(unique_fd(sv[1]));
        c.io = p.io.get();
        c.peer = v4_peer("127.0.0.1");
        c.peer_len = sizeof(sockaddr_in);
        p.s = service_->open(std::move(c));
        ASSERT_TRUE(p.s);
    }
    const std::string req = "GET /a.txt HTTP/1.1\r\nHost: test\r\n\r\n";
    auto serve = [&](peer& p) {
        ASSERT_EQ(::send(p.client.get(), req.data(), req.size(), 0),
                  static_cast<ssize_t>(req.size()));
        ASSERT_TRUE(p.s->on_io(EPOLLIN | EPOLLOUT));
        char buf[4096];
        ASSERT_GT(::recv(p.client.get(), buf, sizeof buf, 0), 0);
    };
    auto* svc = dynamic_cast<http_service*>(service_.get());
    ASSERT_NE(svc, nullptr);
    watched_size = svc->input_capacity();
    const std::size_t buffers_before = watched_count;
    for (auto& p : peers) serve(p);
    EXPECT_LE(watched_count - buffers_before, 1u) << "one input buffer for all";
    const std::size_t before = allocation_count;
    for (auto& p : peers) serve(p);
    EXPECT_EQ(allocation_count - before, 0u);
}

TEST_F(allocation_test, pipelined_and_large_file_requests_allocate_nothing_when_warm) {
    connect();
    const std::string req =
        "GET /index.html HTTP/1.1\r\nHost: test\r\n\r\n"
        "HEAD /big.bin HTTP/1.1\r\nHost: test\r\n\r\n"
        "GET /a.txt HTTP/1.1\r\nHost: test\r\nRange: bytes=1-2\r\n\r\n"
        "GET /missing HTTP/1.1\r\nHost: test\r\n\r\n";
    for (int i = 0; i < 3; ++i) allocations_for(req);
    EXPECT_EQ(allocations_for(req), 0u);
}

TEST_F(allocation_test, access_logging_allocates_nothing_when_warm) {
    unique_fd log_fd(
        ::open((base_ / "access.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    preforkd::detail::context_access::set_access_log_fd(*ctx_, log_fd.get());
    connect();
    const std::string req = "GET /a.txt HTTP/1.1\r\nHost: test\r\nReferer: http://x/\r\n\r\n";
    for (int i = 0; i < 3; ++i) allocations_for(req);
    EXPECT_EQ(allocations_for(req), 0u);
}

TEST_F(allocation_test, precompressed_answers_allocate_nothing_when_warm) {
    write_file("a.txt.br", "br bytes");
    write_file("big.bin.gz", big_);  // sent with sendfile, as any large file
    connect();
    const std::string req =
        "GET /a.txt HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip, br\r\n\r\n"
        "GET /big.bin HTTP/1.1\r\nHost: test\r\nAccept-Encoding: br;q=0.5, gzip\r\n"
        "Range: bytes=1-100\r\n\r\n"
        "GET /a.txt HTTP/1.1\r\nHost: test\r\n\r\n";
    for (int i = 0; i < 3; ++i) allocations_for(req);
    EXPECT_EQ(allocations_for(req), 0u);
    send(req);
    io();
    std::string got;
    read_available(got);
    EXPECT_NE(got.find("Content-Encoding: br\r\n"), std::string::npos);
    EXPECT_NE(got.find("Content-Encoding: gzip\r\n"), std::string::npos);
    EXPECT_NE(got.find("Vary: Accept-Encoding\r\n"), std::string::npos);
}

// Sites (issue 16): finding the site by Host (exact or wildcard) and counting it allocate
// nothing either.
TEST_F(allocation_test, a_warm_request_to_one_of_many_sites_allocates_nothing) {
    for (int i = 0; i < 100; ++i) {
        site s = site_from_http(*settings_);
        s.names = {"site" + std::to_string(i) + ".test"};
        settings_->sites.push_back(std::move(s));
    }
    settings_->sites.back().names.push_back("*.wild.test");
    settings_->finder = site_finder(settings_->sites);
    settings_->site_requests = std::make_shared<const site_counters>(settings_->sites.size());
    settings_->sites_configured = true;
    make_service();
    connect();
    for (const char* host : {"Site57.test:8080", "a.b.wild.test."}) {
        const std::string req =
            std::string("GET /a.txt HTTP/1.1\r\nHost: ") + host + "\r\nUser-Agent: x\r\n\r\n";
        for (int i = 0; i < 3; ++i) allocations_for(req);
        EXPECT_EQ(allocations_for(req), 0u) << host;
    }
    EXPECT_EQ(settings_->site_requests->requests(57), 4u);
    EXPECT_EQ(settings_->site_requests->requests(99), 4u);
}
