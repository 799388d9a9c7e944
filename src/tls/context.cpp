#include "tls/context.hpp"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <cstring>
#include <string>

#include "tls/ktls.hpp"
#include "tls/server_name.hpp"

namespace preforkd::tls {

struct tls_context::state {
    struct cipher_free {
        void operator()(EVP_CIPHER* c) const noexcept { EVP_CIPHER_free(c); }
    };
    std::shared_ptr<const credential_set> credentials;
    std::vector<std::vector<std::string>> names;
    const ticket_key_ring* ring = nullptr;
    // Fetched once per context: EVP_aes_256_cbc() in EVP_CipherInit_ex would look the
    // provider's implementation up again for every ticket sealed or opened.
    std::unique_ptr<EVP_CIPHER, cipher_free> ticket_cipher;
};

namespace {

constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char session_context[] = "preforkd";

int state_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

tls_context::state* state_of(SSL* ssl) {
    return static_cast<tls_context::state*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), state_index()));
}

bool use_credential(SSL* ssl, const credential& c) {
    STACK_OF(X509)* chain = sk_X509_new_null();
    if (!chain) return false;
    for (const x509_ptr& x : c.intermediates) sk_X509_push(chain, x.get());
    // The SSL starts with the default certificate; left there, a default of another key type
    // (ECDSA default, RSA match) would still be preferred by OpenSSL.
    SSL_certs_clear(ssl);
    int ok = SSL_use_cert_and_key(ssl, c.leaf.get(), c.key.get(), chain, 1);
    sk_X509_free(chain);  // SSL_use_cert_and_key took its own references
    return ok == 1;
}

// SNI: the first certificate is already the context's; another one is put on this SSL.
int on_server_name(SSL* ssl, int* alert, void*) {
    tls_context::state* st = state_of(ssl);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!st || !name) return SSL_TLSEXT_ERR_OK;
    size_t index = select_certificate(st->names, name);
    if (index == 0) return SSL_TLSEXT_ERR_OK;
    if (!use_credential(ssl, st->credentials->certificates[index])) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

// ALPN: http/1.1 when the client offers it. A client offering only other protocols goes on
// without ALPN rather than failing, since non-HTTP applications run on the same listeners.
int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void*) {
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, alpn_http11, sizeof alpn_http11, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

bool set_ticket_key(const EVP_CIPHER* aes, const ticket_key& k, unsigned char* iv,
                    EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(k.hmac_key),
                                          sizeof k.hmac_key),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(mac, params) != 1) return false;
    return EVP_CipherInit_ex(cipher, aes, nullptr, k.aes_key, iv, enc) == 1;
}

// Tickets: sealed with the ring's current key; opened with current or previous. Returning 2
// ("renew") makes OpenSSL issue a fresh ticket on the resumed connection: always for the
// previous key, so the client moves to the current one; and always in TLS 1.3, whose clients
// use a ticket once (RFC 8446, C.4: OpenSSL marks the session not resumable after it) -- a
// resumption with no new ticket leaves the client nothing to offer next time, and every
// second connection of a client that resumes would pay a full handshake.
int on_ticket_key(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int enc) {
    tls_context::state* st = state_of(ssl);
    if (!st || !st->ring || !st->ticket_cipher) return 0;
    const EVP_CIPHER* aes = st->ticket_cipher.get();
    const ticket_key_ring ring = snapshot_ticket_keys(*st->ring);
    if (enc == 1) {
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) return -1;
        std::memcpy(key_name, ring.current.name, sizeof ring.current.name);
        return set_ticket_key(aes, ring.current, iv, cipher, mac, 1) ? 1 : -1;
    }
    switch (find_ticket_key(ring, key_name)) {
        case ticket_key_use::current:
            if (!set_ticket_key(aes, ring.current, iv, cipher, mac, 0)) return -1;
            return SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
        case ticket_key_use::previous:
            return set_ticket_key(aes, ring.previous, iv, cipher, mac, 0) ? 2 : -1;
        case ticket_key_use::unknown:
            break;
    }
    return 0;  // unknown key (older than previous): full handshake
}

std::string last_openssl_error() {
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    const char* r = e ? ERR_reason_error_string(e) : nullptr;
    return r ? r : "unknown OpenSSL error";
}

}  // namespace

tls_context::tls_context() noexcept = default;
tls_context::tls_context(tls_context&&) noexcept = default;
tls_context& tls_context::operator=(tls_context&&) noexcept = default;
tls_context::~tls_context() = default;

result<tls_context> tls_context::create(const tls_settings& settings,
                                        std::shared_ptr<const credential_set> credentials,
                                        const ticket_key_ring* ring) {
    ERR_clear_error();
    if (!credentials || credentials->certificates.empty())
        return error("tls: no certificate loaded");
    tls_context out;
    out.state_ = std::make_unique<state>();
    out.state_->names = credentials->names();
    out.state_->credentials = std::move(credentials);
    out.state_->ring = settings.session_tickets ? ring : nullptr;
    out.ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX* ctx = out.ctx_.get();
    if (!ctx) return error("tls: SSL_CTX_new: " + last_openssl_error());
    if (SSL_CTX_set_ex_data(ctx, state_index(), out.state_.get()) != 1)
        return error("tls: SSL_CTX_set_ex_data: " + last_openssl_error());

    SSL_CTX_set_min_proto_version(
        ctx, settings.min == min_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                       // EOF without close_notify reads as an end of stream (0), as on
                       // plain TCP: HTTP/1.1 frames its messages itself.
                       SSL_OP_IGNORE_UNEXPECTED_EOF;
    // The probe is read once per process (here, in the supervisor, before any fork or chroot);
    // workers inherit it, so the handshake's send-path choice agrees with this option.
    if (request_ktls(settings.ktls, kernel_offers_tls_ulp_cached())) options |= SSL_OP_ENABLE_KTLS;
    if (!settings.session_tickets) options |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, options);
    // Partial writes keep the send(2) shape of transport::write; the moving buffer lets the
    // caller retry from a reallocated buffer; idle keep-alive connections give back their
    // record buffers.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    // Read-ahead: one read(2) takes whatever the socket holds (several records) instead of
    // a 5-byte header read and a body read per record; a new connection's handshake went
    // from about 10 reads to about 5. The bytes it buffers get no EPOLLIN edge:
    // tls_transport::pending() reports them.
    SSL_CTX_set_read_ahead(ctx, 1);
    std::string ciphers =
        settings.ciphers.empty() ? std::string(intermediate_ciphers) : settings.ciphers;
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1)
        return error(fmt::format("{}: tls.ciphers \"{}\": {}", settings.file, ciphers,
                                 last_openssl_error()));
    std::string groups(tls_groups);
    if (SSL_CTX_set1_groups_list(ctx, groups.c_str()) != 1)
        return error("tls: groups: " + last_openssl_error());
    // Tickets only: a per-process session cache would resume on one worker out of many.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1);
    // TLS 1.3: one ticket per handshake instead of OpenSSL's two. Each costs a seal (AES +
    // HMAC), random bytes and a write(2); a client resumes with one ticket and gets a fresh
    // one on that resumed connection, so the second only served parallel first connections.
    SSL_CTX_set_num_tickets(ctx, settings.session_tickets ? 1 : 0);
    if (out.state_->ring) {
        out.state_->ticket_cipher.reset(EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr));
        if (!out.state_->ticket_cipher)
            return error("tls: session tickets: AES-256-CBC: " + last_openssl_error());
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    }

    const credential& first = out.state_->credentials->certificates.front();
    if (SSL_CTX_use_certificate(ctx, first.leaf.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, first.key.get()) != 1)
        return error(
            fmt::format("tls: certificate \"{}\": {}", first.cert_file, last_openssl_error()));
    for (const x509_ptr& x : first.intermediates)
        if (SSL_CTX_add1_chain_cert(ctx, x.get()) != 1)
            return error(
                fmt::format("tls: chain of \"{}\": {}", first.cert_file, last_openssl_error()));
    SSL_CTX_set_tlsext_servername_callback(ctx, on_server_name);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
    return out;
}

}  // namespace preforkd::tls
