// PROXY protocol v1/v2 from HAProxy's proxy-protocol.txt: every example form, every field
// check, and the split-invariance the worker relies on (it re-parses as bytes arrive).
#include "core/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <preforkd/detail/address.hpp>
#include <string>
#include <vector>

namespace preforkd {
namespace {

using bytes = std::vector<uint8_t>;

bytes b(std::string_view s) { return bytes(s.begin(), s.end()); }

proxy_result parse(const bytes& v) { return parse_proxy_header(v.data(), v.size()); }

std::string addr(const sockaddr_storage& ss) { return detail::format_address(ss); }

const bytes sig = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

bytes v2(uint8_t ver_cmd, uint8_t fam, const bytes& body) {
    bytes out = sig;
    out.push_back(ver_cmd);
    out.push_back(fam);
    out.push_back(static_cast<uint8_t>(body.size() >> 8));
    out.push_back(static_cast<uint8_t>(body.size() & 0xff));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

const bytes inet_body = {192, 0, 2, 7, 198, 51, 100, 1, 0xC3, 0x50, 0x01, 0xBB};  // :50000 :443

// Every prefix of a header gives need_more, the whole gives `want`, and longer inputs (the
// application's bytes behind) give the same answer.
void expect_split_invariant(const bytes& whole) {
    const proxy_result full = parse(whole);
    for (size_t k = 0; k < whole.size(); ++k) {
        const proxy_result part = parse_proxy_header(whole.data(), k);
        if (full.status == proxy_status::done) {
            ASSERT_EQ(part.status, proxy_status::need_more) << "prefix " << k;
        } else if (part.status != proxy_status::need_more) {
            ASSERT_EQ(part.status, proxy_status::invalid) << "prefix " << k;
        }
    }
    bytes longer = whole;
    longer.insert(longer.end(), {'G', 'E', 'T', ' ', '/', '\r', '\n'});
    const proxy_result more = parse(longer);
    EXPECT_EQ(more.status, full.status);
    EXPECT_EQ(more.consumed, full.consumed);
}

TEST(ProxyV1, Tcp4GivesSourceAndDestination) {
    bytes h = b("PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n");
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done) << r.reason;
    EXPECT_EQ(r.version, 1);
    EXPECT_EQ(r.consumed, h.size());
    EXPECT_FALSE(r.local);
    EXPECT_EQ(addr(r.source), "192.0.2.7:50000");
    EXPECT_EQ(addr(r.destination), "198.51.100.1:443");
    expect_split_invariant(h);
}

TEST(ProxyV1, Tcp6GivesSourceAndDestination) {
    bytes h = b("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n");
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done) << r.reason;
    EXPECT_EQ(addr(r.source), "[2001:db8::1]:65535");
    EXPECT_EQ(addr(r.destination), "[2001:db8::2]:0");
    expect_split_invariant(h);
}

TEST(ProxyV1, UnknownKeepsThePeerAndIgnoresTheRest) {
    for (std::string_view s :
         {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"}) {
        bytes h = b(s);
        proxy_result r = parse(h);
        ASSERT_EQ(r.status, proxy_status::done) << s;
        EXPECT_TRUE(r.local);
        EXPECT_EQ(r.consumed, h.size());
        expect_split_invariant(h);
    }
}

TEST(ProxyV1, LeavesTheApplicationBytes) {
    bytes h = b("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\nGET / HTTP/1.1\r\n\r\n");
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done);
    EXPECT_EQ(r.consumed, std::string_view("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n").size());
}

TEST(ProxyV1, WorstCaseOf107BytesIsAccepted) {
    // The spec's own worst case (section 2.1): 107 bytes with the CRLF.
    std::string s =
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
        "ffff 65535 65535\r\n";
    ASSERT_EQ(s.size(), 104u);
    EXPECT_EQ(parse(b(s)).status, proxy_status::done);
    std::string unknown = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
    ASSERT_EQ(unknown.size(), 107u);
    EXPECT_EQ(parse(b(unknown)).status, proxy_status::done);
}

TEST(ProxyV1, LongerThan107BytesIsInvalid) {
    std::string s = "PROXY UNKNOWN " + std::string(200, 'x') + "\r\n";
    proxy_result r = parse(b(s));
    EXPECT_EQ(r.status, proxy_status::invalid);
    // Decided at 107 bytes: a client cannot make us wait for more.
    EXPECT_EQ(parse_proxy_header(b(s).data(), 107).status, proxy_status::invalid);
    EXPECT_EQ(parse_proxy_header(b(s).data(), 106).status, proxy_status::need_more);
}

TEST(ProxyV1, MalformedHeadersAreInvalid) {
    for (std::string_view s : {
             "PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\n",      // bare LF
             "PROXY TCP4 192.0.2.7 198.51.100.1 50000\r443\r\n",   // bare CR
             "PROXY TCP4 192.0.2.7 198.51.100.1 50000 443 1\r\n",  // extra field
             "PROXY TCP4 192.0.2.7 198.51.100.1 50000\r\n",        // missing field
             "PROXY TCP4  192.0.2.7 198.51.100.1 50000 443\r\n",   // double space
             "PROXY TCP4 192.0.2.7 198.51.100.1 50000 443 \r\n",   // trailing space
             "PROXY TCP4 2001:db8::1 198.51.100.1 50000 443\r\n",  // v6 in TCP4
             "PROXY TCP6 192.0.2.7 2001:db8::2 50000 443\r\n",     // v4 in TCP6
             "PROXY TCP4 192.0.2.256 198.51.100.1 50000 443\r\n",  // octet > 255
             "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",    // port > 65535
             "PROXY TCP4 192.0.2.7 198.51.100.1 050000 443\r\n",   // leading zero
             "PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",       // sign
             "PROXY TCP4 192.0.2.7 198.51.100.1 +1 443\r\n",       // sign
             "PROXY TCP4 192.0.2.7 198.51.100.1 1 44a\r\n",        // not a number
             "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",          // not TCP
             "PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n",          // case matters
             "PROXY UNKNOWNX\r\n",                                 // not UNKNOWN
             "PROXY \r\n",                                         // nothing
             "PROXY\r\n",                                          // no space
             "proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",          // not the signature
             "GET / HTTP/1.1\r\n\r\n",                             // no header at all
             "\x16\x03\x01\x02\x00\x01",                           // a TLS ClientHello
         }) {
        proxy_result r = parse(b(s));
        EXPECT_EQ(r.status, proxy_status::invalid) << s;
        EXPECT_NE(std::string_view(r.reason), "") << s;
        expect_split_invariant(b(s));
    }
}

TEST(ProxyV1, NeedsMoreUntilTheLineEnds) {
    EXPECT_EQ(parse(b("")).status, proxy_status::need_more);
    EXPECT_EQ(parse(b("P")).status, proxy_status::need_more);
    EXPECT_EQ(parse(b("PROXY TCP4 1.2.3.4")).status, proxy_status::need_more);
    EXPECT_EQ(parse(b("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r")).status, proxy_status::need_more);
    EXPECT_EQ(parse(b("PX")).status, proxy_status::invalid);  // refused without waiting
}

TEST(ProxyV2, ProxyInetGivesSourceAndDestination) {
    bytes h = v2(0x21, 0x11, inet_body);
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done) << r.reason;
    EXPECT_EQ(r.version, 2);
    EXPECT_EQ(r.consumed, 28u);
    EXPECT_FALSE(r.local);
    EXPECT_EQ(addr(r.source), "192.0.2.7:50000");
    EXPECT_EQ(addr(r.destination), "198.51.100.1:443");
    expect_split_invariant(h);
}

TEST(ProxyV2, ProxyInet6GivesSourceAndDestination) {
    bytes body(36, 0);
    body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 1;
    body[16] = 0x20, body[17] = 0x01, body[18] = 0x0d, body[19] = 0xb8, body[31] = 2;
    body[32] = 0x12, body[33] = 0x34, body[34] = 0x00, body[35] = 0x50;
    bytes h = v2(0x21, 0x21, body);
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done) << r.reason;
    EXPECT_EQ(addr(r.source), "[2001:db8::1]:4660");
    EXPECT_EQ(addr(r.destination), "[2001:db8::2]:80");
    expect_split_invariant(h);
}

TEST(ProxyV2, ProxyUnixGivesThePath) {
    bytes body(216, 0);
    std::string_view path = "/run/client.sock";
    std::copy(path.begin(), path.end(), body.begin());
    bytes h = v2(0x21, 0x31, body);
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done) << r.reason;
    EXPECT_EQ(r.source.ss_family, AF_UNIX);
    EXPECT_EQ(detail::format_address(r.source, sizeof(sockaddr_un)), "unix:/run/client.sock");
}

TEST(ProxyV2, TlvsAreSkipped) {
    bytes body = inet_body;
    // PP2_TYPE_ALPN "h2", PP2_TYPE_AUTHORITY "example.org", then a NOOP with 3 bytes.
    body.insert(body.end(), {0x01, 0x00, 0x02, 'h', '2'});
    body.insert(body.end(),
                {0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'o', 'r', 'g'});
    body.insert(body.end(), {0x04, 0x00, 0x03, 0, 0, 0});
    bytes h = v2(0x21, 0x11, body);
    h.insert(h.end(), {'G', 'E', 'T'});
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done) << r.reason;
    EXPECT_EQ(r.consumed, 16 + body.size());
    EXPECT_EQ(addr(r.source), "192.0.2.7:50000");
}

TEST(ProxyV2, LocalKeepsThePeerWhateverTheAddressBlock) {
    for (const bytes& h : {v2(0x20, 0x00, {}), v2(0x20, 0x11, inet_body), v2(0x20, 0x12, {})}) {
        proxy_result r = parse(h);
        ASSERT_EQ(r.status, proxy_status::done) << r.reason;
        EXPECT_TRUE(r.local);
        EXPECT_EQ(r.consumed, h.size());
        expect_split_invariant(h);
    }
}

TEST(ProxyV2, UnspecifiedFamilyOrProtocolKeepsThePeer) {
    for (const bytes& h : {v2(0x21, 0x00, {}), v2(0x21, 0x10, inet_body), v2(0x21, 0x01, {})}) {
        proxy_result r = parse(h);
        ASSERT_EQ(r.status, proxy_status::done) << r.reason;
        EXPECT_TRUE(r.local);
    }
}

TEST(ProxyV2, MalformedHeadersAreInvalid) {
    for (const bytes& h : {
             v2(0x11, 0x11, inet_body),                        // version 1 in a v2 header
             v2(0x31, 0x11, inet_body),                        // version 3
             v2(0x22, 0x11, inet_body),                        // command 2
             v2(0x21, 0x41, inet_body),                        // family 4
             v2(0x21, 0x13, inet_body),                        // protocol 3
             v2(0x21, 0x12, inet_body),                        // DGRAM on a stream
             v2(0x21, 0x11, bytes(11, 0)),                     // INET needs 12 bytes
             v2(0x21, 0x21, bytes(35, 0)),                     // INET6 needs 36
             v2(0x21, 0x31, bytes(215, 0)),                    // UNIX needs 216
             v2(0x21, 0x11, bytes(proxy_v2_max - 16 + 1, 0)),  // over our bound
         }) {
        proxy_result r = parse(h);
        EXPECT_EQ(r.status, proxy_status::invalid);
        EXPECT_EQ(r.version, 2);
        expect_split_invariant(h);
    }
}

TEST(ProxyV2, BadHeadersAreRefusedBeforeTheirBody) {
    // The fixed 16 bytes are enough to refuse: no waiting for a body that is never valid.
    bytes h = v2(0x22, 0x11, inet_body);
    EXPECT_EQ(parse_proxy_header(h.data(), 16).status, proxy_status::invalid);
    bytes big = v2(0x21, 0x11, bytes(0xffff, 0));
    EXPECT_EQ(parse_proxy_header(big.data(), 16).status, proxy_status::invalid);
}

TEST(ProxyV2, LargestAcceptedHeaderIsDone) {
    bytes body = inet_body;
    body.resize(proxy_v2_max - 16, 0);
    bytes h = v2(0x21, 0x11, body);
    proxy_result r = parse(h);
    ASSERT_EQ(r.status, proxy_status::done) << r.reason;
    EXPECT_EQ(r.consumed, proxy_v2_max);
}

TEST(ProxyV2, PartialSignatureNeedsMoreAndWrongSignatureIsInvalid) {
    EXPECT_EQ(parse_proxy_header(sig.data(), 5).status, proxy_status::need_more);
    bytes wrong = sig;
    wrong[11] = 0x0B;
    EXPECT_EQ(parse(wrong).status, proxy_status::invalid);
    bytes crlf = b("\r\n\r\nGET");  // starts like v2, then is not
    EXPECT_EQ(parse(crlf).status, proxy_status::invalid);
}

}  // namespace
}  // namespace preforkd
