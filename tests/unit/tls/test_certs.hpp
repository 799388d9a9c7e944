// Certificates for the TLS tests, made at test time with the openssl CLI in a temporary
// folder (removed at exit): nothing secret is committed. Made once per test binary.
#pragma once

#include <string>

namespace preforkd::tls::test {

struct test_certs {
    std::string dir;
    std::string ca;           // root CA certificate (what clients trust)
    std::string ecdsa_chain;  // P-256 leaf (example.org, www.example.org) + intermediate
    std::string ecdsa_key;
    std::string rsa_cert;  // RSA 2048 leaf (other.net, *.other.net), signed by the CA
    std::string rsa_key;
    std::string expired_cert;  // ECDSA leaf (old.example), expired in 2020
    std::string expired_key;
    std::string soon_cert;  // ECDSA leaf (soon.example), expires in 5 days
    std::string soon_key;
    std::string wrong_order;   // intermediate first, then the ECDSA leaf
    std::string intermediate;  // the intermediate alone
};

// Aborts the test binary (with the command) when openssl fails.
const test_certs& certs();

// Writes `text` to dir/name and returns the path.
std::string write_file(const std::string& name, const std::string& text);

}  // namespace preforkd::tls::test
