#include "tls/tls_config.hpp"

#include <gtest/gtest.h>

namespace preforkd::tls {
namespace {

using namespace std::chrono_literals;

result<tls_settings> parse(std::string_view text) {
    toml::table doc;
    try {
        doc = toml::parse(text);
    } catch (const toml::parse_error& e) {
        return error(std::string(e.description()));
    }
    return parse_tls_settings(doc["tls"].as_table(), "/etc/preforkd/preforkd.toml",
                              "/etc/preforkd");
}

TEST(tls_config, no_table_gives_the_defaults) {
    auto s = parse_tls_settings(nullptr, "f.toml", "/x");
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->certificates.empty());
    EXPECT_EQ(s->min, min_version::tls1_2);
    EXPECT_TRUE(s->ciphers.empty());
    EXPECT_TRUE(s->session_tickets);
    EXPECT_TRUE(s->ktls);
    EXPECT_EQ(s->handshake_timeout, 10s);
}

TEST(tls_config, every_key_is_read_and_paths_resolve_against_the_config_folder) {
    auto s = parse(R"([tls]
certificates = [
  { cert = "tls/example.org.pem", key = "tls/example.org.key" },
  { cert = "/abs/other.pem",      key = "/abs/other.key" },
]
min_version = "1.3"
ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"
session_tickets = false
ktls = false
handshake_timeout = "2500ms"
)");
    ASSERT_TRUE(s) << s.err().message;
    ASSERT_EQ(s->certificates.size(), 2u);
    EXPECT_EQ(s->certificates[0].cert, "/etc/preforkd/tls/example.org.pem");
    EXPECT_EQ(s->certificates[0].key, "/etc/preforkd/tls/example.org.key");
    EXPECT_EQ(s->certificates[0].line, 3u);
    EXPECT_EQ(s->certificates[1].cert, "/abs/other.pem");
    EXPECT_EQ(s->certificates[1].line, 4u);
    EXPECT_EQ(s->min, min_version::tls1_3);
    EXPECT_EQ(s->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    EXPECT_FALSE(s->session_tickets);
    EXPECT_FALSE(s->ktls);
    EXPECT_EQ(s->handshake_timeout, 2500ms);
    EXPECT_EQ(s->file, "/etc/preforkd/preforkd.toml");
}

TEST(tls_config, errors_name_file_line_and_key) {
    auto bad_version = parse("[tls]\nmin_version = \"1.1\"\n");
    ASSERT_FALSE(bad_version);
    EXPECT_EQ(bad_version.err().message,
              "/etc/preforkd/preforkd.toml:2: tls.min_version: must be \"1.2\" or \"1.3\"");

    auto no_key = parse("[tls]\ncertificates = [\n  { cert = \"a.pem\" },\n]\n");
    ASSERT_FALSE(no_key);
    EXPECT_EQ(no_key.err().message,
              "/etc/preforkd/preforkd.toml:3: tls.certificates[0]: needs both cert and key");

    auto extra = parse("[tls]\ncertificates = [{ cert = \"a\", key = \"b\", chain = \"c\" }]\n");
    ASSERT_FALSE(extra);
    EXPECT_NE(extra.err().message.find("tls.certificates[0]: unknown key \"chain\""),
              std::string::npos)
        << extra.err().message;

    auto unknown = parse("[tls]\n\nsession_ticket = true\n");
    ASSERT_FALSE(unknown);
    EXPECT_TRUE(unknown.err().message.starts_with(
        "/etc/preforkd/preforkd.toml:3: tls.session_ticket: unknown key"))
        << unknown.err().message;

    EXPECT_FALSE(parse("[tls]\nhandshake_timeout = \"0s\"\n"));
    EXPECT_FALSE(parse("[tls]\nhandshake_timeout = \"soon\"\n"));
    EXPECT_FALSE(parse("[tls]\nktls = \"yes\"\n"));
    EXPECT_FALSE(parse("[tls]\ncertificates = \"a.pem\"\n"));
    auto secs = parse("[tls]\nhandshake_timeout = 3\n");
    ASSERT_TRUE(secs);
    EXPECT_EQ(secs->handshake_timeout, 3s);
}

}  // namespace
}  // namespace preforkd::tls
