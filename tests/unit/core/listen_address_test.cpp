// parse_listen_address and parse_duration: the two value syntaxes of the config.
#include <gtest/gtest.h>

#include <preforkd/config.hpp>
#include <string>

namespace preforkd {
namespace {

using family = listen_address::family_t;
using namespace std::chrono_literals;

std::string error_of(std::string_view text) {
    auto r = parse_listen_address(text);
    EXPECT_FALSE(r.ok()) << text << " parsed as " << (r ? r->to_string() : "");
    return r ? std::string() : r.err().message;
}

TEST(listen_address, numeric_ipv4_keeps_host_and_port) {
    auto a = parse_listen_address("10.1.2.3:8080");
    ASSERT_TRUE(a.ok()) << a.err().message;
    EXPECT_EQ(a->family, family::inet4);
    EXPECT_EQ(a->host, "10.1.2.3");
    EXPECT_EQ(a->port, 8080);
    EXPECT_EQ(a->path, "");
    EXPECT_EQ(a->to_string(), "10.1.2.3:8080");
}

TEST(listen_address, localhost_means_ipv4_loopback) {
    auto a = parse_listen_address("localhost:80");
    ASSERT_TRUE(a.ok()) << a.err().message;
    EXPECT_EQ(a->to_string(), "127.0.0.1:80");
    EXPECT_EQ(*a, *parse_listen_address("127.0.0.1:80"));
}

TEST(listen_address, star_means_every_ipv4_address) {
    auto a = parse_listen_address("*:443");
    ASSERT_TRUE(a.ok()) << a.err().message;
    EXPECT_EQ(a->family, family::inet4);
    EXPECT_EQ(a->host, "0.0.0.0");
    EXPECT_EQ(a->to_string(), "0.0.0.0:443");
}

TEST(listen_address, ipv6_is_canonicalised) {
    auto a = parse_listen_address("[0:0::1]:80");
    ASSERT_TRUE(a.ok()) << a.err().message;
    EXPECT_EQ(a->family, family::inet6);
    EXPECT_EQ(a->host, "::1");
    EXPECT_EQ(a->to_string(), "[::1]:80");
    EXPECT_EQ(*a, *parse_listen_address("[::1]:80"));
    EXPECT_EQ(parse_listen_address("[2001:DB8:0:0:0:0:0:1]:8080")->to_string(),
              "[2001:db8::1]:8080");
    EXPECT_EQ(parse_listen_address("[::]:1")->to_string(), "[::]:1");
}

TEST(listen_address, ports_differ_addresses_differ) {
    EXPECT_NE(*parse_listen_address("127.0.0.1:80"), *parse_listen_address("127.0.0.1:81"));
    EXPECT_NE(*parse_listen_address("127.0.0.1:80"), *parse_listen_address("[::1]:80"));
}

TEST(listen_address, leading_zeros_in_port_are_the_same_port) {
    EXPECT_EQ(parse_listen_address("127.0.0.1:0080")->to_string(), "127.0.0.1:80");
}

TEST(listen_address, unix_path_is_kept) {
    auto a = parse_listen_address("unix:/run/preforkd/http.sock");
    ASSERT_TRUE(a.ok()) << a.err().message;
    EXPECT_EQ(a->family, family::unix_path);
    EXPECT_EQ(a->path, "/run/preforkd/http.sock");
    EXPECT_EQ(a->host, "");
    EXPECT_EQ(a->port, 0);
    EXPECT_EQ(a->to_string(), "unix:/run/preforkd/http.sock");
}

TEST(listen_address, unix_paths_are_normalised_so_one_socket_has_one_spelling) {
    EXPECT_EQ(parse_listen_address("unix://x.sock")->to_string(), "unix:/x.sock");
    EXPECT_EQ(parse_listen_address("unix:/run//a/./b/../x.sock")->to_string(),
              "unix:/run/a/x.sock");
    EXPECT_EQ(*parse_listen_address("unix://x.sock"), *parse_listen_address("unix:/x.sock"));
    EXPECT_EQ(error_of("unix:/run/x/"),
              R"("unix:/run/x/" names a folder, not a socket file (unix:/run/x.sock))");
    EXPECT_EQ(error_of("unix:/"),
              R"("unix:/" names a folder, not a socket file (unix:/run/x.sock))");
}

TEST(listen_address, ipv4_mapped_ipv6_is_refused_with_the_ipv4_spelling) {
    EXPECT_EQ(error_of("[::ffff:127.0.0.1]:8080"),
              R"("[::ffff:127.0.0.1]:8080" is an IPv4-mapped address, which an IPv6-only )"
              "listener cannot bind: write 127.0.0.1:8080");
    EXPECT_EQ(error_of("[::ffff:0:0]:80"),
              R"("[::ffff:0:0]:80" is an IPv4-mapped address, which an IPv6-only )"
              "listener cannot bind: write 0.0.0.0:80");
    EXPECT_TRUE(parse_listen_address("[::1]:80").ok());
    EXPECT_TRUE(parse_listen_address("[2001:db8::ffff:1]:80").ok());
}

TEST(listen_address, unix_path_must_fit_sun_path) {
    std::string longest = "/" + std::string(106, 'a');  // 107 bytes + NUL = sizeof sun_path
    EXPECT_TRUE(parse_listen_address("unix:" + longest).ok());
    EXPECT_EQ(
        error_of("unix:" + longest + "a"),
        "\"unix:" + longest + "a\" is too long for a unix socket (at most 107 bytes of path)");
}

TEST(listen_address, unix_path_must_be_absolute) {
    EXPECT_EQ(error_of("unix:run/x.sock"),
              R"("unix:run/x.sock" must name an absolute path (unix:/run/x.sock))");
    EXPECT_EQ(error_of("unix:"), R"("unix:" must name an absolute path (unix:/run/x.sock))");
}

TEST(listen_address, host_names_are_rejected_without_dns) {
    EXPECT_EQ(error_of("example.com:80"),
              R"("example.com:80" names a host; use a numeric address, localhost or * )"
              "(names are not resolved)");
    error_of("ip6-localhost:80");
}

TEST(listen_address, bad_ipv4_is_rejected) {
    EXPECT_EQ(error_of("256.0.0.1:80"), R"("256.0.0.1:80" has a bad IPv4 address "256.0.0.1")");
    error_of("1.2.3:80");
    error_of("1.2.3.4.5:80");
    error_of("1..3.4:80");
}

TEST(listen_address, bad_ports_are_rejected) {
    EXPECT_EQ(error_of("127.0.0.1:0"), R"("127.0.0.1:0" has port 0, out of range 1..65535)");
    EXPECT_EQ(error_of("127.0.0.1:65536"),
              R"("127.0.0.1:65536" has port 65536, out of range 1..65535)");
    EXPECT_EQ(error_of("127.0.0.1:8a"), R"("127.0.0.1:8a" has a bad port "8a" (digits 1..65535))");
    EXPECT_EQ(error_of("127.0.0.1:"), R"("127.0.0.1:" has no port (write host:port))");
    error_of("127.0.0.1:+80");
    error_of("127.0.0.1:-80");
    error_of("127.0.0.1: 80");
    // Must not wrap around to a valid port.
    error_of("127.0.0.1:18446744073709551696");
    EXPECT_TRUE(parse_listen_address("127.0.0.1:65535").ok());
}

TEST(listen_address, missing_parts_are_rejected) {
    EXPECT_EQ(error_of(""), R"("" is not a listen address (use host:port or unix:/path))");
    EXPECT_EQ(error_of("127.0.0.1"),
              R"("127.0.0.1" has no port (write host:port, e.g. 127.0.0.1:8080))");
    EXPECT_EQ(error_of(":80"), R"(":80" has no host (use *:port for every address))");
}

TEST(listen_address, ipv6_needs_brackets) {
    EXPECT_EQ(error_of("::1:80"),
              R"("::1:80" looks like an IPv6 address: put it in brackets ([::1]:8080))");
    EXPECT_EQ(error_of("[::1"), R"("[::1" has no closing ']')");
    EXPECT_EQ(error_of("[::1]80"), R"("[::1]80" has no port (write [address]:port))");
    EXPECT_EQ(error_of("[::g]:80"), R"("[::g]:80" has a bad IPv6 address "::g")");
    error_of("[127.0.0.1]:80");
    error_of("[fe80::1%eth0]:80");
}

TEST(listen_address, control_bytes_in_messages_are_escaped) {
    EXPECT_EQ(error_of("a\nb:80").find('\n'), std::string::npos);
    EXPECT_EQ(error_of(std::string("[::1\0]:80", 9)).find('\0'), std::string::npos);
}

TEST(duration, units) {
    EXPECT_EQ(*parse_duration("250ms"), 250ms);
    EXPECT_EQ(*parse_duration("5s"), 5s);
    EXPECT_EQ(*parse_duration("2m"), 2min);
    EXPECT_EQ(*parse_duration("1h"), 1h);
}

TEST(duration, bare_digits_are_seconds) {
    EXPECT_EQ(*parse_duration("30"), 30s);
    EXPECT_EQ(*parse_duration("007"), 7s);
}

TEST(duration, zero_is_allowed) {
    EXPECT_EQ(*parse_duration("0"), 0ms);
    EXPECT_EQ(*parse_duration("0ms"), 0ms);
}

TEST(duration, rejects_what_is_not_digits_and_a_unit) {
    for (const char* bad : {"", "s", "-5s", "+5s", " 5s", "5s ", "5 s", "1.5s", "5x", "5S", "5sec",
                            "5ms5", "ms", "0x10"}) {
        auto r = parse_duration(bad);
        EXPECT_FALSE(r.ok()) << '"' << bad << '"';
    }
    EXPECT_EQ(parse_duration("5x").err().message,
              R"("5x" is not a duration (e.g. "250ms", "5s", "2m", "1h" or "30"))");
}

TEST(duration, caps_at_one_year_instead_of_overflowing) {
    EXPECT_EQ(*parse_duration("8760h"), 8760h);
    EXPECT_EQ(parse_duration("8761h").err().message,
              R"("8761h" is too large (at most 8760h, one year))");
    EXPECT_FALSE(parse_duration("99999999999999999999").ok());
    EXPECT_FALSE(parse_duration("9223372036854775807ms").ok());
    EXPECT_FALSE(parse_duration("9223372036854775808ms").ok());
    EXPECT_FALSE(parse_duration("5124095576030432h").ok());
}

// ---- flags --------------------------------------------------------------------------------

TEST(listen_address, no_flags_by_default) {
    auto a = parse_listen_address("*:443");
    ASSERT_TRUE(a.ok());
    EXPECT_FALSE(a->tls);
    EXPECT_FALSE(a->proxy);
    EXPECT_EQ(a->flags_string(), "");
}

TEST(listen_address, tls_and_proxy_flags_after_the_address) {
    auto a = parse_listen_address("*:443 tls");
    ASSERT_TRUE(a.ok()) << a.err().message;
    EXPECT_EQ(a->to_string(), "0.0.0.0:443");
    EXPECT_TRUE(a->tls);
    EXPECT_FALSE(a->proxy);

    auto b = parse_listen_address("[::]:443 tls proxy");
    ASSERT_TRUE(b.ok()) << b.err().message;
    EXPECT_EQ(b->to_string(), "[::]:443");
    EXPECT_TRUE(b->tls);
    EXPECT_TRUE(b->proxy);
    EXPECT_EQ(b->flags_string(), " tls proxy");

    // Order and extra blanks do not matter.
    auto c = parse_listen_address("127.0.0.1:8080  proxy\ttls ");
    ASSERT_TRUE(c.ok()) << c.err().message;
    EXPECT_TRUE(c->tls);
    EXPECT_TRUE(c->proxy);

    auto u = parse_listen_address("unix:/run/p.sock proxy");
    ASSERT_TRUE(u.ok()) << u.err().message;
    EXPECT_EQ(u->path, "/run/p.sock");
    EXPECT_TRUE(u->proxy);
}

TEST(listen_address, unknown_or_repeated_flag_is_refused) {
    EXPECT_EQ(error_of("*:443 tsl"),
              R"("*:443 tsl" has an unknown flag "tsl" (flags: tls, proxy))");
    EXPECT_EQ(error_of("*:443 tls tls"), R"("*:443 tls tls" repeats the flag "tls")");
    EXPECT_EQ(error_of("*:443 TLS"),
              R"("*:443 TLS" has an unknown flag "TLS" (flags: tls, proxy))");
}

TEST(listen_address, a_bad_address_is_named_before_its_flags) {
    EXPECT_EQ(error_of("*:0 tls"), R"("*:0" has port 0, out of range 1..65535)");
}

TEST(listen_address, same_socket_ignores_flags_equality_does_not) {
    auto plain = *parse_listen_address("127.0.0.1:8443");
    auto tls = *parse_listen_address("127.0.0.1:8443 tls");
    EXPECT_TRUE(same_socket(plain, tls));
    EXPECT_FALSE(plain == tls);
    EXPECT_FALSE(same_socket(plain, *parse_listen_address("127.0.0.1:8444 tls")));
}

// Found by the config fuzzer (base64 dW5peDoveCAgIHRscyAg): extra blanks around the flags
// are accepted, and the entry as printed (address + flags) parses back to the same entry.
TEST(listen_address, flags_with_extra_blanks_round_trip_through_their_printed_form) {
    auto a = parse_listen_address("unix:/x   tls  ");
    ASSERT_TRUE(a.ok()) << a.err().message;
    EXPECT_EQ(a->family, family::unix_path);
    EXPECT_EQ(a->path, "/x");
    EXPECT_TRUE(a->tls);
    EXPECT_FALSE(a->proxy);
    EXPECT_EQ(a->to_string() + a->flags_string(), "unix:/x tls");

    auto again = parse_listen_address(a->to_string() + a->flags_string());
    ASSERT_TRUE(again.ok()) << again.err().message;
    EXPECT_EQ(*again, *a);

    auto bare = parse_listen_address(a->to_string());
    ASSERT_TRUE(bare.ok()) << bare.err().message;
    EXPECT_TRUE(same_socket(*bare, *a));
    EXPECT_FALSE(bare->tls);
}

}  // namespace
}  // namespace preforkd
