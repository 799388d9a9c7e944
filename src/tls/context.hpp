// The SSL_CTX a worker accepts TLS connections with: Mozilla "intermediate" defaults, the
// certificates chosen by SNI, ALPN http/1.1, and session tickets sealed with the shared ring.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <preforkd/result.hpp>
#include <string_view>

#include "tls/credentials.hpp"
#include "tls/ticket_keys.hpp"
#include "tls/tls_settings.hpp"

namespace preforkd::tls {

// Mozilla "intermediate" TLS 1.2 ciphers: ECDHE with AEAD only (TLS 1.3 suites are
// OpenSSL's defaults, all AEAD).
inline constexpr std::string_view intermediate_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr std::string_view tls_groups = "X25519:P-256:P-384";

class tls_context {
  public:
    // `credentials` stays shared with the context (the SNI callback reads it). `ring` is the
    // shared ticket key ring (null when session_tickets is off); it must outlive the context:
    // in the worker it lives in the scoreboard mapping.
    static result<tls_context> create(const tls_settings& settings,
                                      std::shared_ptr<const credential_set> credentials,
                                      const ticket_key_ring* ring);

    tls_context() noexcept;
    tls_context(tls_context&&) noexcept;
    tls_context& operator=(tls_context&&) noexcept;
    ~tls_context();

    SSL_CTX* get() const noexcept { return ctx_.get(); }

    struct state;  // what the callbacks reach through SSL_CTX ex data

  private:
    struct ctx_free {
        void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
    };
    std::unique_ptr<state> state_;
    std::unique_ptr<SSL_CTX, ctx_free> ctx_;  // declared last: freed first, before state_
};

}  // namespace preforkd::tls
