// Certificates and keys as OpenSSL objects in memory. The supervisor (root) loads them before
// it forks and again on HUP; workers inherit the objects and never open a key file, so a key
// may be 0600 root.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <preforkd/result.hpp>
#include <string>
#include <vector>

#include "tls/tls_settings.hpp"

namespace preforkd::tls {

struct x509_free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct pkey_free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

// How close to its end a certificate gets a warning.
inline constexpr time_t expiry_warning_seconds = 14 * 24 * 3600;

struct credential {
    x509_ptr leaf;
    std::vector<x509_ptr> intermediates;  // in file order, after the leaf
    pkey_ptr key;
    std::vector<std::string> dns_names;  // subjectAltName DNS entries of the leaf, as written
    std::string cert_file;
    std::string key_file;
    bool ecdsa = false;  // else RSA
};

struct credential_set {
    std::vector<credential> certificates;  // same order as tls_settings::certificates
    std::vector<std::string> warnings;     // expired / expiring soon / no DNS names
    // Each certificate's DNS names, in the shape select_certificate() takes.
    std::vector<std::vector<std::string>> names() const;
};

// Loads and checks every pair: each file parses as PEM, the chain is leaf first with each
// intermediate having issued the one before it, the key is RSA or ECDSA and matches the leaf.
// The first problem is the error, as `file:line: tls.certificates[N] cert "path": reason`.
// Expiry (at `now`, or within 14 days of it) is a warning only.
result<credential_set> load_credentials(const tls_settings& settings, time_t now);

}  // namespace preforkd::tls
