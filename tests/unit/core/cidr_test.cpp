#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <preforkd/detail/cidr.hpp>

namespace preforkd::detail {
namespace {

sockaddr_storage peer(const char* text) {
    sockaddr_storage ss{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else {
        EXPECT_EQ(::inet_pton(AF_INET6, text, &sin6->sin6_addr), 1) << text;
        sin6->sin6_family = AF_INET6;
    }
    return ss;
}

cidr block(const char* text) {
    auto c = parse_cidr(text);
    EXPECT_TRUE(c.ok()) << text;
    return c.ok() ? *c : cidr{};
}

TEST(Cidr, ParsesBlocksAndSingleAddresses) {
    EXPECT_EQ(block("127.0.0.1").bits, 32u);
    EXPECT_EQ(block("::1").bits, 128u);
    EXPECT_TRUE(block("::1/128").v6);
    EXPECT_EQ(block("10.0.0.0/8").bits, 8u);
    EXPECT_EQ(block("0.0.0.0/0").bits, 0u);
    // Host bits are cleared: 10.1.2.3/8 is 10.0.0.0/8.
    EXPECT_EQ(block("10.1.2.3/8"), block("10.0.0.0/8"));
    EXPECT_EQ(block("2001:db8:ffff::1/32"), block("2001:db8::/32"));
}

TEST(Cidr, RefusesMalformedBlocks) {
    for (const char* s : {"", "/", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1",
                          "10.0.0.0/8x", "localhost", "10.0.0/8", "1.2.3.4/8/8",
                          "0123456789012345678901234567890123456789012345678901234567890"}) {
        auto c = parse_cidr(s);
        EXPECT_FALSE(c.ok()) << s;
        if (!c.ok()) {
            EXPECT_NE(c.err().message.find(s), std::string::npos) << s;
        }
    }
}

TEST(Cidr, MatchesByPrefix) {
    EXPECT_TRUE(cidr_contains(block("127.0.0.1/32"), peer("127.0.0.1")));
    EXPECT_FALSE(cidr_contains(block("127.0.0.1/32"), peer("127.0.0.2")));
    EXPECT_TRUE(cidr_contains(block("10.0.0.0/8"), peer("10.255.1.2")));
    EXPECT_FALSE(cidr_contains(block("10.0.0.0/8"), peer("11.0.0.1")));
    EXPECT_TRUE(cidr_contains(block("192.168.0.0/23"), peer("192.168.1.200")));
    EXPECT_FALSE(cidr_contains(block("192.168.0.0/23"), peer("192.168.2.1")));
    EXPECT_TRUE(cidr_contains(block("0.0.0.0/0"), peer("203.0.113.9")));
    EXPECT_TRUE(cidr_contains(block("2001:db8::/32"), peer("2001:db8:1::5")));
    EXPECT_FALSE(cidr_contains(block("2001:db8::/32"), peer("2001:db9::5")));
    EXPECT_TRUE(cidr_contains(block("::/0"), peer("fe80::1")));
}

TEST(Cidr, FamiliesDoNotMix) {
    EXPECT_FALSE(cidr_contains(block("::/0"), peer("127.0.0.1")));
    EXPECT_FALSE(cidr_contains(block("0.0.0.0/0"), peer("::1")));
}

TEST(Cidr, V4MappedPeersMatchAsIpv4) {
    EXPECT_TRUE(cidr_contains(block("127.0.0.1/32"), peer("::ffff:127.0.0.1")));
    EXPECT_FALSE(cidr_contains(block("::ffff:0:0/96"), peer("::ffff:127.0.0.1")));
}

TEST(Cidr, UnixAndUnspecifiedPeersMatchNothing) {
    sockaddr_storage unix_peer{};
    unix_peer.ss_family = AF_UNIX;
    sockaddr_storage none{};
    EXPECT_FALSE(cidr_contains(block("0.0.0.0/0"), unix_peer));
    EXPECT_FALSE(cidr_contains(block("::/0"), none));
}

TEST(Cidr, TrustedIsAnyOfTheList) {
    std::vector<cidr> defaults{block("127.0.0.1/32"), block("::1/128")};
    EXPECT_TRUE(trusted(peer("127.0.0.1"), defaults));
    EXPECT_TRUE(trusted(peer("::1"), defaults));
    EXPECT_FALSE(trusted(peer("127.0.0.2"), defaults));
    EXPECT_FALSE(trusted(peer("127.0.0.1"), {}));
}

}  // namespace
}  // namespace preforkd::detail
