#include "tls/tls_accept.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "test_certs.hpp"
#include "tls/context.hpp"
#include "tls/first_bytes.hpp"

namespace preforkd::tls {
namespace {

using clock = tls_accept::clock;
using namespace std::chrono_literals;

struct pair_fixture : ::testing::Test {
    void SetUp() override {
        tls_settings s;
        s.file = "test.toml";
        s.certificates = {{test::certs().ecdsa_chain, test::certs().ecdsa_key, 1}};
        auto set = load_credentials(s, time(nullptr));
        ASSERT_TRUE(set) << set.err().message;
        auto made = tls_context::create(s, std::make_shared<const credential_set>(std::move(*set)),
                                        nullptr);
        ASSERT_TRUE(made) << made.err().message;
        ctx = std::move(*made);
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        server = std::make_unique<tls_transport>(unique_fd{sv[0]}, ctx.get(), &counters);
        peer = sv[1];
    }
    void TearDown() override {
        // The server first: an established transport says close_notify as it goes, and a
        // write to a closed peer would raise SIGPIPE (the worker ignores it; a test does not).
        server.reset();
        if (peer >= 0) ::close(peer);
    }
    void send_peer(std::string_view bytes) {
        ASSERT_EQ(::write(peer, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    }

    tls_context ctx;
    tls_counters counters;
    std::unique_ptr<tls_transport> server;
    int peer = -1;
};

TEST_F(pair_fixture, plain_http_gets_the_400_then_our_side_shuts) {
    tls_accept accept(*server, clock::now() + 10s);
    EXPECT_EQ(accept.step(clock::now()), accept_status::in_progress);
    EXPECT_EQ(accept.wants(), readiness::read);
    send_peer("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n");
    EXPECT_EQ(accept.step(clock::now()), accept_status::answered_plain_http);
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = ::read(peer, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(n, 0);  // end of stream after the answer
    EXPECT_EQ(got, plain_http_on_tls_response());
    EXPECT_EQ(counters.failures, 0u);
}

TEST_F(pair_fixture, garbage_is_rejected_and_counted) {
    tls_accept accept(*server, clock::now() + 10s);
    send_peer("\x16\x05");
    EXPECT_EQ(accept.step(clock::now()), accept_status::rejected);
    EXPECT_EQ(counters.failures, 1u);
}

TEST_F(pair_fixture, the_deadline_rejects_a_slow_start) {
    auto start = clock::now();
    tls_accept accept(*server, start + 10s);
    send_peer("\x16\x03");  // a handshake that stops after two bytes
    EXPECT_EQ(accept.step(start + 1s), accept_status::in_progress);
    EXPECT_EQ(accept.step(start + 10s), accept_status::rejected);
    EXPECT_EQ(counters.failures, 1u);
}

TEST_F(pair_fixture, a_tls_client_is_established) {
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(cctx, test::certs().ca.c_str(), nullptr);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
    SSL* client = SSL_new(cctx);
    SSL_set_fd(client, peer);
    SSL_set_tlsext_host_name(client, "example.org");
    SSL_set_connect_state(client);
    tls_accept accept(*server, clock::now() + 10s);
    accept_status st = accept_status::in_progress;
    for (int i = 0; i < 50 && st == accept_status::in_progress; ++i) {
        (void)SSL_do_handshake(client);
        st = accept.step(clock::now());
    }
    ERR_clear_error();
    EXPECT_EQ(st, accept_status::established);
    EXPECT_EQ(counters.handshakes, 1u);
    SSL_free(client);
    SSL_CTX_free(cctx);
}

}  // namespace
}  // namespace preforkd::tls
