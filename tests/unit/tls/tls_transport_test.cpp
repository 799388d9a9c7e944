// tls_transport as the server against an OpenSSL client, both non-blocking over a
// socketpair, driven step by step in one thread.
#include "tls/tls_transport.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_certs.hpp"
#include "tls/context.hpp"

namespace preforkd::tls {
namespace {

using test::certs;

struct ctx_free {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct ssl_free {
    void operator()(SSL* s) const { SSL_free(s); }
};
struct session_free {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using client_ctx_ptr = std::unique_ptr<SSL_CTX, ctx_free>;
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;
using session_ptr = std::unique_ptr<SSL_SESSION, session_free>;

std::shared_ptr<const credential_set> both_certificates() {
    tls_settings s;
    s.file = "test.toml";
    s.certificates = {{certs().ecdsa_chain, certs().ecdsa_key, 1},
                      {certs().rsa_cert, certs().rsa_key, 2}};
    auto set = load_credentials(s, time(nullptr));
    if (!set) ADD_FAILURE() << set.err().message;
    return std::make_shared<const credential_set>(std::move(*set));
}

tls_context server_context(const ticket_key_ring* ring, tls_settings s = {}) {
    auto ctx = tls_context::create(s, both_certificates(), ring);
    if (!ctx) ADD_FAILURE() << ctx.err().message;
    return std::move(*ctx);
}

client_ctx_ptr client_context(int min = TLS1_2_VERSION, int max = TLS1_3_VERSION) {
    client_ctx_ptr c(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_load_verify_locations(c.get(), certs().ca.c_str(), nullptr);
    SSL_CTX_set_verify(c.get(), SSL_VERIFY_PEER, nullptr);
    if (min < TLS1_2_VERSION) {
        // Debian's OpenSSL refuses TLS 1.1 itself; this client must offer it anyway.
        SSL_CTX_set_security_level(c.get(), 0);
        SSL_CTX_set_cipher_list(c.get(), "DEFAULT:@SECLEVEL=0");
    }
    SSL_CTX_set_min_proto_version(c.get(), min);
    SSL_CTX_set_max_proto_version(c.get(), max);
    static const unsigned char alpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(c.get(), alpn, sizeof alpn);
    return c;
}

struct connection {
    std::unique_ptr<tls_transport> server;
    ssl_ptr client;
    handshake_status status = handshake_status::want_read;
    bool client_done = false;
    bool client_failed = false;
};

connection connect(SSL_CTX* server_ctx, SSL_CTX* client_ctx, tls_counters* counters,
                   const char* sni = nullptr, SSL_SESSION* session = nullptr,
                   bool verify_name = true, const char* early = nullptr) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    connection c;
    c.server = std::make_unique<tls_transport>(unique_fd(sv[0]), server_ctx, counters);
    EXPECT_TRUE(c.server->valid());
    c.client.reset(SSL_new(client_ctx));
    SSL_set_fd(c.client.get(), sv[1]);
    SSL_set_connect_state(c.client.get());
    if (sni) {
        SSL_set_tlsext_host_name(c.client.get(), sni);
        if (verify_name) SSL_set1_host(c.client.get(), sni);
    }
    if (session) SSL_set_session(c.client.get(), session);
    for (int i = 0; i < 100; ++i) {
        if (!c.client_done && !c.client_failed) {
            int r = SSL_do_handshake(c.client.get());
            if (r == 1) {
                c.client_done = true;
                // Sent before the server reads the client's Finished: both arrive together.
                size_t n = 0;
                if (early) {
                    EXPECT_EQ(SSL_write_ex(c.client.get(), early, strlen(early), &n), 1);
                }
            } else {
                int e = SSL_get_error(c.client.get(), r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) c.client_failed = true;
            }
        }
        if (c.status == handshake_status::want_read || c.status == handshake_status::want_write)
            c.status = c.server->handshake();
        if (c.status == handshake_status::failed) break;
        if (c.client_done && c.status == handshake_status::done) break;
        if (c.client_failed && i > 5) break;
    }
    ERR_clear_error();
    return c;
}

// Everything the client can read now (it also takes in TLS 1.3 session tickets).
std::string client_read(const connection& c) {
    std::string out;
    char buf[8192];
    for (;;) {
        size_t n = 0;
        if (SSL_read_ex(c.client.get(), buf, sizeof buf, &n) != 1) break;
        out.append(buf, n);
    }
    ERR_clear_error();
    return out;
}

void client_write(const connection& c, std::string_view text) {
    size_t n = 0;
    ASSERT_EQ(SSL_write_ex(c.client.get(), text.data(), text.size(), &n), 1);
    ASSERT_EQ(n, text.size());
}

TEST(tls_transport, handshake_alpn_chain_and_data_both_ways) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cctx = client_context();
    tls_counters counters;
    connection c = connect(ctx.get(), cctx.get(), &counters, "www.example.org");
    ASSERT_EQ(c.status, handshake_status::done) << c.server->failure_reason();
    ASSERT_TRUE(c.client_done);
    EXPECT_EQ(counters.handshakes, 1u);
    EXPECT_EQ(counters.resumed, 0u);
    EXPECT_EQ(counters.failures, 0u);
    // The leaf alone does not reach the CA: verifying proves the intermediate was sent.
    EXPECT_EQ(SSL_get_verify_result(c.client.get()), X509_V_OK);
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c.client.get(), &alpn, &alpn_len);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_len), "http/1.1");
    EXPECT_EQ(c.server->path(), kernel_offers_tls_ulp() ? c.server->path() : send_path::userspace);

    char buf[64];
    EXPECT_EQ(c.server->read(buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(c.server->wants(), readiness::read);

    client_write(c, "GET / HTTP/1.1\r\n\r\n");
    ssize_t n = c.server->read(buf, 4);
    ASSERT_EQ(n, 4);
    EXPECT_EQ(std::string(buf, 4), "GET ");
    EXPECT_GT(c.server->pending(), 0u);  // the rest of the record, decrypted, held inside
    n = c.server->read(buf, sizeof buf);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "/ HTTP/1.1\r\n\r\n");
    EXPECT_EQ(c.server->pending(), 0u);

    EXPECT_EQ(c.server->write("HTTP/1.1 200 OK\r\n", 17, true), 17);
    std::string a = "Content-Length: 2\r\n\r\n", b = "ok";
    iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    EXPECT_EQ(c.server->writev(iov, 2), static_cast<ssize_t>(a.size() + b.size()));
    EXPECT_EQ(client_read(c), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");

    c.server->shutdown_write();
    EXPECT_EQ(SSL_read(c.client.get(), buf, sizeof buf), 0);
    EXPECT_EQ(SSL_get_error(c.client.get(), 0), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
}

// What an edge-triggered session does: read until a short read with nothing pending, then
// wait for the next EPOLLIN edge. Returns what it read; fails if bytes were left behind that
// no edge would announce (already taken from the socket, or left in it by that read).
std::string read_like_a_session(tls_transport& t) {
    std::string got;
    char buf[4096];
    for (int i = 0; i < 100; ++i) {
        ssize_t n = t.read(buf, sizeof buf);
        if (n < 0) {
            EXPECT_EQ(errno, EAGAIN);
            break;
        }
        got.append(buf, static_cast<size_t>(n));
        if (n > 0 && static_cast<size_t>(n) < sizeof buf && t.pending() == 0) {
            EXPECT_EQ(t.read(buf, sizeof buf), -1) << "bytes left behind after " << got;
            EXPECT_EQ(errno, EAGAIN);
            break;
        }
    }
    return got;
}

TEST(tls_transport, a_request_sent_with_the_finished_is_not_left_behind) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cctx = client_context(TLS1_3_VERSION, TLS1_3_VERSION);
    const char* request = "GET /early HTTP/1.1\r\nHost: a\r\n\r\n";
    connection c = connect(ctx.get(), cctx.get(), nullptr, "example.org", nullptr, true, request);
    ASSERT_EQ(c.status, handshake_status::done) << c.server->failure_reason();
    // The worker's first turn after the handshake reads at once; a later turn needs either
    // the socket still readable or the transport saying it holds bytes.
    char peek[8];
    const bool in_socket = ::recv(c.server->fd(), peek, sizeof peek, MSG_PEEK) > 0;
    EXPECT_TRUE(in_socket || c.server->pending() > 0);
    EXPECT_EQ(read_like_a_session(*c.server), request);
}

TEST(tls_transport, pipelined_records_read_in_one_go_are_all_reported) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cctx = client_context();
    connection c = connect(ctx.get(), cctx.get(), nullptr, "example.org");
    ASSERT_EQ(c.status, handshake_status::done) << c.server->failure_reason();
    client_read(c);  // the TLS 1.3 tickets
    std::string all;
    for (const char* r : {"GET /1 HTTP/1.1\r\n\r\n", "GET /2 HTTP/1.1\r\n\r\n",
                          "GET /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\n\r\n"}) {
        client_write(c, r);  // one record each, all in the socket before the server reads
        all += r;
    }
    EXPECT_EQ(read_like_a_session(*c.server), all);
    // A record that is only half there: pending() must not promise bytes a read cannot give
    // (connection::wait polls on pending() and would spin), and the rest is announced by
    // the socket.
    const int client_fd = SSL_get_fd(c.client.get());
    BIO* mem = BIO_new(BIO_s_mem());
    ASSERT_NE(mem, nullptr);
    SSL_set0_wbio(c.client.get(), mem);  // the client's records now go to memory
    client_write(c, "GET /5 HTTP/1.1\r\n\r\n");
    char* bytes = nullptr;
    const long len = BIO_get_mem_data(mem, &bytes);
    ASSERT_GT(len, 10);
    ASSERT_EQ(::send(client_fd, bytes, 10, 0), 10);
    char buf[64];
    EXPECT_EQ(c.server->read(buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(c.server->pending(), 0u);
    ASSERT_EQ(::send(client_fd, bytes + 10, static_cast<size_t>(len - 10), 0), len - 10);
    EXPECT_EQ(read_like_a_session(*c.server), "GET /5 HTTP/1.1\r\n\r\n");
}

TEST(tls_transport, sendfile_goes_through_userspace_writes_and_survives_eagain) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cctx = client_context();
    connection c = connect(ctx.get(), cctx.get(), nullptr, "example.org");
    ASSERT_EQ(c.status, handshake_status::done);
    ASSERT_EQ(c.server->path(), send_path::userspace);  // no tls ULP on these machines

    std::string content(300 * 1024, '\0');
    for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 23);
    std::string path = test::write_file("body.bin", content);
    int file = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(file, 0);
    off_t offset = 0;
    std::string received;
    int eagains = 0;
    for (int round = 0; round < 10000 && static_cast<size_t>(offset) < content.size(); ++round) {
        ssize_t n = c.server->sendfile(file, &offset, content.size() - offset);
        if (n < 0) {
            ASSERT_EQ(errno, EAGAIN);
            EXPECT_EQ(c.server->wants(), readiness::write);
            ++eagains;
            received += client_read(c);  // the client drains; the retry repeats the bytes
        } else {
            ASSERT_GT(n, 0);
        }
    }
    ::close(file);
    received += client_read(c);
    EXPECT_GT(eagains, 0);  // the socketpair filled at least once: the retry path ran
    EXPECT_EQ(static_cast<size_t>(offset), content.size());
    EXPECT_TRUE(received == content) << received.size();
}

// Sends all of `file` from 0 over the transport, draining the client on EAGAIN.
std::string send_whole_file(connection& c, int file, size_t size) {
    off_t offset = 0;
    std::string received;
    for (int round = 0; round < 10000 && static_cast<size_t>(offset) < size; ++round) {
        ssize_t n = c.server->sendfile(file, &offset, size - offset);
        if (n < 0 && errno != EAGAIN) break;
        if (n < 0) received += client_read(c);
    }
    return received + client_read(c);
}

// The userspace path reads a large file ahead (several records per pread); what it read of
// one file must never go out as the next file's bytes, even on the same descriptor number.
TEST(tls_transport, bytes_read_ahead_of_one_file_are_not_sent_for_the_next) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cctx = client_context();
    connection c = connect(ctx.get(), cctx.get(), nullptr, "example.org");
    ASSERT_EQ(c.status, handshake_status::done);
    const std::string a(40 * 1024, 'a'), b(40 * 1024, 'b');
    const std::string a_path = test::write_file("a.bin", a), b_path = test::write_file("b.bin", b);
    int file = ::open(a_path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(file, 0);
    EXPECT_TRUE(send_whole_file(c, file, a.size()) == a);
    ::close(file);
    int next = ::open(b_path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_EQ(next, file);  // the same number: only the transport's own state can tell them apart
    EXPECT_TRUE(send_whole_file(c, next, b.size()) == b);
    ::close(next);
}

TEST(tls_transport, sni_selects_the_certificate_by_subject_alt_name) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cctx = client_context();
    auto key_of = [&](const char* sni) {
        bool covered = sni && std::string_view(sni) != "unknown.test";
        connection c = connect(ctx.get(), cctx.get(), nullptr, sni, nullptr, covered);
        EXPECT_EQ(c.status, handshake_status::done);
        if (covered) {
            EXPECT_EQ(SSL_get_verify_result(c.client.get()), X509_V_OK) << sni;
        }
        X509* peer = SSL_get1_peer_certificate(c.client.get());
        std::string type = peer && EVP_PKEY_is_a(X509_get0_pubkey(peer), "RSA") ? "RSA" : "EC";
        X509_free(peer);
        return type;
    };
    EXPECT_EQ(key_of("a.other.net"), "RSA");
    EXPECT_EQ(key_of("OTHER.NET"), "RSA");
    EXPECT_EQ(key_of("example.org"), "EC");
    EXPECT_EQ(key_of("unknown.test"), "EC");  // no match: the first certificate
    EXPECT_EQ(key_of(nullptr), "EC");         // no SNI: the first certificate
}

// A ticket from one worker's context resumes on another worker's context built from the
// same ring, after one rotation (reload) too; two rotations later it is a full handshake.
void resumes_across_contexts(int version) {
    ticket_key_ring ring{};
    ASSERT_TRUE(init_ticket_keys(ring, 0));
    tls_context worker_a = server_context(&ring);
    tls_context worker_b = server_context(&ring);
    client_ctx_ptr cctx = client_context(version, version);
    tls_counters a_counters, b_counters;

    connection first = connect(worker_a.get(), cctx.get(), &a_counters, "example.org");
    ASSERT_EQ(first.status, handshake_status::done);
    ASSERT_EQ(first.server->write("x", 1), 1);
    ASSERT_EQ(client_read(first), "x");  // TLS 1.3: takes in the tickets sent after Finished
    session_ptr session(SSL_get1_session(first.client.get()));
    ASSERT_TRUE(session && SSL_SESSION_is_resumable(session.get()));
    EXPECT_FALSE(first.server->resumed());

    connection second =
        connect(worker_b.get(), cctx.get(), &b_counters, "example.org", session.get());
    ASSERT_EQ(second.status, handshake_status::done);
    EXPECT_TRUE(second.server->resumed());
    EXPECT_TRUE(SSL_session_reused(second.client.get()));
    EXPECT_EQ(b_counters.handshakes, 1u);
    EXPECT_EQ(b_counters.resumed, 1u);

    ASSERT_TRUE(rotate_ticket_keys(ring, 10, true));
    connection after_reload =
        connect(worker_b.get(), cctx.get(), &b_counters, "example.org", session.get());
    ASSERT_EQ(after_reload.status, handshake_status::done);
    EXPECT_TRUE(after_reload.server->resumed());

    ASSERT_TRUE(rotate_ticket_keys(ring, 20, true));
    connection too_old =
        connect(worker_a.get(), cctx.get(), &a_counters, "example.org", session.get());
    ASSERT_EQ(too_old.status, handshake_status::done);
    EXPECT_FALSE(too_old.server->resumed());
    EXPECT_EQ(b_counters.resumed, 2u);
    EXPECT_EQ(a_counters.handshakes, 2u);
    EXPECT_EQ(a_counters.resumed, 0u);
}

TEST(tls_transport, tls13_resumes_on_another_worker_and_after_a_reload) {
    resumes_across_contexts(TLS1_3_VERSION);
}

TEST(tls_transport, tls12_resumes_on_another_worker_and_after_a_reload) {
    resumes_across_contexts(TLS1_2_VERSION);
}

TEST(tls_transport, tls13_sends_one_ticket_per_handshake) {
    ticket_key_ring ring{};
    ASSERT_TRUE(init_ticket_keys(ring, 0));
    tls_context ctx = server_context(&ring);
    client_ctx_ptr cctx = client_context(TLS1_3_VERSION, TLS1_3_VERSION);
    static int tickets;
    tickets = 0;
    SSL_CTX_set_session_cache_mode(cctx.get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(cctx.get(), [](SSL*, SSL_SESSION*) {
        ++tickets;
        return 0;  // not kept
    });
    connection c = connect(ctx.get(), cctx.get(), nullptr, "example.org");
    ASSERT_EQ(c.status, handshake_status::done);
    ASSERT_EQ(c.server->write("x", 1), 1);
    ASSERT_EQ(client_read(c), "x");  // the tickets come before it
    EXPECT_EQ(tickets, 1);
}

// A client that always offers what it was given last (wrk, browsers: TLS 1.3 tickets are
// single-use) resumes every time: a resumed TLS 1.3 connection carries a new ticket. Without
// it, every second connection was a full handshake.
void resumes_again_and_again(int version) {
    ticket_key_ring ring{};
    ASSERT_TRUE(init_ticket_keys(ring, 0));
    tls_context ctx = server_context(&ring);
    client_ctx_ptr cctx = client_context(version, version);
    // A client-side cache, as wrk's and browsers': OpenSSL then treats a TLS 1.3 ticket as
    // used up once it resumed (the session is taken out and marked not resumable).
    SSL_CTX_set_session_cache_mode(cctx.get(), SSL_SESS_CACHE_CLIENT);
    tls_counters counters;
    session_ptr last;
    // Kept open: freeing a client SSL that never shut down marks its session not resumable.
    std::vector<connection> open;
    for (int i = 0; i < 4; ++i) {
        connection& c =
            open.emplace_back(connect(ctx.get(), cctx.get(), &counters, "example.org", last.get()));
        ASSERT_EQ(c.status, handshake_status::done);
        EXPECT_EQ(c.server->resumed(), i > 0) << "connection " << i;
        ASSERT_EQ(c.server->write("x", 1), 1);
        ASSERT_EQ(client_read(c), "x");  // takes in a TLS 1.3 ticket sent before it
        last.reset(SSL_get1_session(c.client.get()));
        ASSERT_TRUE(last && SSL_SESSION_is_resumable(last.get())) << "connection " << i;
    }
    EXPECT_EQ(counters.handshakes, 4u);
    EXPECT_EQ(counters.resumed, 3u);
}

TEST(tls_transport, tls13_a_client_resumes_again_with_the_ticket_of_a_resumed_connection) {
    resumes_again_and_again(TLS1_3_VERSION);
}

TEST(tls_transport, tls12_a_client_resumes_again_with_the_session_of_a_resumed_connection) {
    resumes_again_and_again(TLS1_2_VERSION);
}

TEST(tls_transport, without_tickets_there_is_no_resumption) {
    ticket_key_ring ring{};
    ASSERT_TRUE(init_ticket_keys(ring, 0));
    tls_settings off;
    off.session_tickets = false;
    tls_context ctx = server_context(&ring, off);
    client_ctx_ptr cctx = client_context(TLS1_2_VERSION, TLS1_2_VERSION);
    connection first = connect(ctx.get(), cctx.get(), nullptr, "example.org");
    ASSERT_EQ(first.status, handshake_status::done);
    session_ptr session(SSL_get1_session(first.client.get()));
    connection second = connect(ctx.get(), cctx.get(), nullptr, "example.org", session.get());
    ASSERT_EQ(second.status, handshake_status::done);
    EXPECT_FALSE(second.server->resumed());
}

TEST(tls_transport, tls11_is_refused_and_counted_as_a_failure) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cctx = client_context(TLS1_1_VERSION, TLS1_1_VERSION);
    tls_counters counters;
    connection c = connect(ctx.get(), cctx.get(), &counters, "example.org");
    EXPECT_EQ(c.status, handshake_status::failed);
    EXPECT_FALSE(c.client_done);
    EXPECT_EQ(counters.failures, 1u);
    EXPECT_EQ(counters.handshakes, 0u);
    EXPECT_FALSE(c.server->failure_reason().empty());
    char buf[8];
    EXPECT_EQ(c.server->read(buf, sizeof buf), -1);
    EXPECT_NE(errno, EAGAIN);
}

TEST(tls_transport, min_version_13_refuses_a_tls12_client) {
    tls_settings s;
    s.min = min_version::tls1_3;
    tls_context ctx = server_context(nullptr, s);
    client_ctx_ptr old_client = client_context(TLS1_2_VERSION, TLS1_2_VERSION);
    connection c = connect(ctx.get(), old_client.get(), nullptr, "example.org");
    EXPECT_EQ(c.status, handshake_status::failed);
    client_ctx_ptr new_client = client_context(TLS1_3_VERSION, TLS1_3_VERSION);
    connection ok = connect(ctx.get(), new_client.get(), nullptr, "example.org");
    EXPECT_EQ(ok.status, handshake_status::done);
}

TEST(tls_transport, the_context_has_the_intermediate_profile) {
    tls_context on = server_context(nullptr);
    uint64_t o = SSL_CTX_get_options(on.get());
    EXPECT_TRUE(o & SSL_OP_NO_RENEGOTIATION);
    EXPECT_TRUE(o & SSL_OP_NO_COMPRESSION);
    // ktls = on by default, but OpenSSL is asked only when the kernel offers the tls ULP.
    EXPECT_EQ((o & SSL_OP_ENABLE_KTLS) != 0, kernel_offers_tls_ulp());
    EXPECT_FALSE(o & SSL_OP_NO_TICKET);
    EXPECT_EQ(SSL_CTX_get_num_tickets(on.get()), 1u);  // not OpenSSL's 2: half the ticket work
    EXPECT_EQ(SSL_CTX_get_min_proto_version(on.get()), TLS1_2_VERSION);
    tls_settings no_ktls;
    no_ktls.ktls = false;
    tls_context off = server_context(nullptr, no_ktls);
    EXPECT_FALSE(SSL_CTX_get_options(off.get()) & SSL_OP_ENABLE_KTLS);
}

TEST(tls_transport, a_tls12_client_without_aead_ciphers_is_refused) {
    tls_context ctx = server_context(nullptr);
    client_ctx_ptr cbc = client_context(TLS1_2_VERSION, TLS1_2_VERSION);
    ASSERT_EQ(SSL_CTX_set_cipher_list(cbc.get(),
                                      "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA"),
              1);
    tls_counters counters;
    connection c = connect(ctx.get(), cbc.get(), &counters, "example.org");
    EXPECT_EQ(c.status, handshake_status::failed);
    EXPECT_EQ(counters.failures, 1u);
}

TEST(tls_transport, a_bad_cipher_list_is_a_config_error) {
    tls_settings s;
    s.file = "preforkd.toml";
    s.ciphers = "NOT-A-CIPHER";
    auto ctx = tls_context::create(s, both_certificates(), nullptr);
    ASSERT_FALSE(ctx);
    EXPECT_TRUE(ctx.err().message.starts_with("preforkd.toml: tls.ciphers \"NOT-A-CIPHER\": "))
        << ctx.err().message;
}

TEST(tls_transport, plain_bytes_fail_the_handshake_without_touching_others) {
    tls_context ctx = server_context(nullptr);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    tls_counters counters;
    tls_transport server(unique_fd{sv[0]}, ctx.get(), &counters);
    EXPECT_EQ(server.handshake(), handshake_status::want_read);
    EXPECT_EQ(server.wants(), readiness::read);
    std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::write(sv[1], junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    EXPECT_EQ(server.handshake(), handshake_status::failed);
    EXPECT_EQ(counters.failures, 1u);
    ::close(sv[1]);
    // The same context still serves the next client.
    client_ctx_ptr cctx = client_context();
    connection c = connect(ctx.get(), cctx.get(), &counters, "example.org");
    EXPECT_EQ(c.status, handshake_status::done);
}

TEST(tls_transport, a_peer_closing_mid_handshake_is_a_failure) {
    tls_context ctx = server_context(nullptr);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    tls_transport server(unique_fd{sv[0]}, ctx.get(), nullptr);
    ::close(sv[1]);
    EXPECT_EQ(server.handshake(), handshake_status::failed);
    EXPECT_FALSE(server.failure_reason().empty());
}

}  // namespace
}  // namespace preforkd::tls
