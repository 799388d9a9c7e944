#include "tls/credentials.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_certs.hpp"

namespace preforkd::tls {
namespace {

using test::certs;

tls_settings settings_with(std::vector<certificate_files> files) {
    tls_settings s;
    s.file = "/etc/preforkd.toml";
    s.certificates = std::move(files);
    return s;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(credentials, ecdsa_with_an_intermediate_and_rsa_load_with_their_names) {
    auto set = load_credentials(settings_with({{certs().ecdsa_chain, certs().ecdsa_key, 3},
                                               {certs().rsa_cert, certs().rsa_key, 4}}),
                                time(nullptr));
    ASSERT_TRUE(set) << set.err().message;
    ASSERT_EQ(set->certificates.size(), 2u);
    const credential& ec = set->certificates[0];
    EXPECT_TRUE(ec.ecdsa);
    EXPECT_EQ(ec.intermediates.size(), 1u);
    EXPECT_EQ(ec.dns_names, (std::vector<std::string>{"example.org", "www.example.org"}));
    const credential& rsa = set->certificates[1];
    EXPECT_FALSE(rsa.ecdsa);
    EXPECT_TRUE(rsa.intermediates.empty());
    EXPECT_EQ(rsa.dns_names, (std::vector<std::string>{"other.net", "*.other.net"}));
    EXPECT_TRUE(set->warnings.empty());
    EXPECT_EQ(set->names().size(), 2u);
}

TEST(credentials, a_key_of_another_certificate_is_an_error_naming_file_line_and_entry) {
    auto set = load_credentials(settings_with({{certs().ecdsa_chain, certs().ecdsa_key, 3},
                                               {certs().rsa_cert, certs().ecdsa_key, 7}}),
                                time(nullptr));
    ASSERT_FALSE(set);
    EXPECT_EQ(set.err().message, "/etc/preforkd.toml:7: tls.certificates[1] key \"" +
                                     certs().ecdsa_key + "\": does not match the certificate \"" +
                                     certs().rsa_cert + "\"");
}

TEST(credentials, missing_and_non_pem_files_are_errors) {
    auto missing = load_credentials(
        settings_with({{certs().dir + "/nope.pem", certs().ecdsa_key, 2}}), time(nullptr));
    ASSERT_FALSE(missing);
    EXPECT_TRUE(missing.err().message.starts_with(
        "/etc/preforkd.toml:2: tls.certificates[0] cert \"" + certs().dir + "/nope.pem\": "))
        << missing.err().message;

    std::string junk = test::write_file("junk.pem", "not a certificate\n");
    auto bad_cert = load_credentials(settings_with({{junk, certs().ecdsa_key, 2}}), time(nullptr));
    ASSERT_FALSE(bad_cert);
    EXPECT_NE(bad_cert.err().message.find("cert \"" + junk + "\": no PEM certificate"),
              std::string::npos)
        << bad_cert.err().message;

    auto bad_key = load_credentials(settings_with({{certs().rsa_cert, junk, 2}}), time(nullptr));
    ASSERT_FALSE(bad_key);
    EXPECT_NE(bad_key.err().message.find("key \"" + junk + "\": no PEM private key"),
              std::string::npos)
        << bad_key.err().message;

    auto none = load_credentials(settings_with({}), time(nullptr));
    ASSERT_FALSE(none);
}

TEST(credentials, a_damaged_certificate_after_the_leaf_is_an_error) {
    std::string damaged =
        test::write_file("damaged_chain.pem",
                         read_all(certs().rsa_cert) +
                             "-----BEGIN CERTIFICATE-----\nAAAA!!!\n-----END CERTIFICATE-----\n");
    auto set = load_credentials(settings_with({{damaged, certs().rsa_key, 2}}), time(nullptr));
    ASSERT_FALSE(set);
    EXPECT_NE(set.err().message.find("after the first does not parse"), std::string::npos)
        << set.err().message;
}

TEST(credentials, a_chain_in_the_wrong_order_is_an_error) {
    // The intermediate first: its key is not the ECDSA leaf's, so either check may speak;
    // a leaf followed by a certificate that did not issue it is the order check.
    std::string swapped = test::write_file(
        "leaf_then_wrong_issuer.pem", read_all(certs().rsa_cert) + read_all(certs().intermediate));
    auto set = load_credentials(settings_with({{swapped, certs().rsa_key, 9}}), time(nullptr));
    ASSERT_FALSE(set);
    EXPECT_NE(set.err().message.find("/etc/preforkd.toml:9: tls.certificates[0] cert"),
              std::string::npos);
    EXPECT_NE(set.err().message.find("did not issue"), std::string::npos) << set.err().message;

    auto inverted = load_credentials(settings_with({{certs().wrong_order, certs().ecdsa_key, 9}}),
                                     time(nullptr));
    ASSERT_FALSE(inverted);
}

TEST(credentials, expired_and_soon_expiring_certificates_are_warnings_not_errors) {
    auto set = load_credentials(settings_with({{certs().expired_cert, certs().expired_key, 2},
                                               {certs().soon_cert, certs().soon_key, 3}}),
                                time(nullptr));
    ASSERT_TRUE(set) << set.err().message;
    ASSERT_EQ(set->warnings.size(), 2u);
    EXPECT_NE(set->warnings[0].find("tls.certificates[0] cert \"" + certs().expired_cert +
                                    "\": expired on"),
              std::string::npos)
        << set->warnings[0];
    EXPECT_NE(set->warnings[1].find("tls.certificates[1]"), std::string::npos);
    EXPECT_NE(set->warnings[1].find("within 14 days"), std::string::npos) << set->warnings[1];
    // Seen from 20 days earlier, the soon one is fine.
    auto earlier = load_credentials(settings_with({{certs().soon_cert, certs().soon_key, 3}}),
                                    time(nullptr) - 20 * 24 * 3600);
    ASSERT_TRUE(earlier);
    EXPECT_TRUE(earlier->warnings.empty());
}

}  // namespace
}  // namespace preforkd::tls
