#include "tls/credentials.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace preforkd::tls {

namespace {

struct bio_free {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;

// The oldest OpenSSL error as text (then the queue is cleared, so nothing stale is left).
std::string openssl_reason(std::string_view fallback) {
    unsigned long e = ERR_peek_error();
    ERR_clear_error();
    if (e == 0) return std::string(fallback);
    const char* reason = ERR_reason_error_string(e);
    return reason ? reason : std::string(fallback);
}

std::string time_text(const ASN1_TIME* t) {
    bio_ptr mem(BIO_new(BIO_s_mem()));
    if (!mem || ASN1_TIME_print(mem.get(), t) != 1) return "?";
    char* data = nullptr;
    long n = BIO_get_mem_data(mem.get(), &data);
    return std::string(data, static_cast<size_t>(n));
}

std::vector<std::string> dns_names_of(X509* leaf) {
    std::vector<std::string> out;
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
    if (!names) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type != GEN_DNS) continue;
        const ASN1_IA5STRING* s = n->d.dNSName;
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(names);
    return out;
}

}  // namespace

std::vector<std::vector<std::string>> credential_set::names() const {
    std::vector<std::vector<std::string>> out;
    for (const credential& c : certificates) out.push_back(c.dns_names);
    return out;
}

result<credential_set> load_credentials(const tls_settings& settings, time_t now) {
    credential_set set;
    if (settings.certificates.empty())
        return error(fmt::format("{}: tls.certificates: at least one {{ cert, key }} is needed",
                                 settings.file));
    ERR_clear_error();
    for (size_t i = 0; i < settings.certificates.size(); ++i) {
        const certificate_files& files = settings.certificates[i];
        auto fail = [&](std::string_view which, const std::string& path, std::string_view why) {
            return error(fmt::format("{}:{}: tls.certificates[{}] {} \"{}\": {}", settings.file,
                                     files.line, i, which, path, why));
        };
        credential c;
        c.cert_file = files.cert;
        c.key_file = files.key;

        bio_ptr cert_bio(BIO_new_file(files.cert.c_str(), "r"));
        if (!cert_bio) return fail("cert", files.cert, openssl_reason("cannot open"));
        c.leaf.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
        if (!c.leaf)
            return fail("cert", files.cert,
                        "no PEM certificate (" + openssl_reason("unreadable") + ")");
        while (X509* next = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr))
            c.intermediates.emplace_back(next);
        // The loop ends on "no start line" at the end of the file: that is not an error, but
        // anything else (a damaged certificate after the leaf) is.
        unsigned long last = ERR_peek_last_error();
        if (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE)
            return fail("cert", files.cert,
                        "a certificate after the first does not parse (" +
                            openssl_reason("unreadable") + ")");
        ERR_clear_error();
        X509* below = c.leaf.get();
        for (size_t k = 0; k < c.intermediates.size(); ++k) {
            if (X509_check_issued(c.intermediates[k].get(), below) != X509_V_OK)
                return fail("cert", files.cert,
                            fmt::format("certificate {} of the file did not issue certificate {} "
                                        "(the chain must be leaf first, then its issuers)",
                                        k + 2, k + 1));
            below = c.intermediates[k].get();
        }

        bio_ptr key_bio(BIO_new_file(files.key.c_str(), "r"));
        if (!key_bio) return fail("key", files.key, openssl_reason("cannot open"));
        c.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
        if (!c.key)
            return fail("key", files.key,
                        "no PEM private key (" + openssl_reason("unreadable") + ")");
        if (EVP_PKEY_is_a(c.key.get(), "EC")) {
            c.ecdsa = true;
        } else if (!EVP_PKEY_is_a(c.key.get(), "RSA")) {
            return fail("key", files.key, "only RSA and ECDSA keys are supported");
        }
        if (X509_check_private_key(c.leaf.get(), c.key.get()) != 1) {
            ERR_clear_error();
            return fail("key", files.key,
                        fmt::format("does not match the certificate \"{}\"", files.cert));
        }

        c.dns_names = dns_names_of(c.leaf.get());
        const ASN1_TIME* not_after = X509_get0_notAfter(c.leaf.get());
        time_t soon = now + expiry_warning_seconds;
        std::string where = fmt::format("{}:{}: tls.certificates[{}] cert \"{}\"", settings.file,
                                        files.line, i, files.cert);
        if (X509_cmp_time(not_after, &now) < 0)
            set.warnings.push_back(fmt::format("{}: expired on {}", where, time_text(not_after)));
        else if (X509_cmp_time(not_after, &soon) < 0)
            set.warnings.push_back(
                fmt::format("{}: expires on {}, within 14 days", where, time_text(not_after)));
        if (c.dns_names.empty())
            set.warnings.push_back(
                fmt::format("{}: no subjectAltName DNS name, so SNI never selects it", where));
        set.certificates.push_back(std::move(c));
    }
    return set;
}

}  // namespace preforkd::tls
