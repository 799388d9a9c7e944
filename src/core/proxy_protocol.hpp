// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load
// balancer sends first on a `proxy` listener, before any byte of the application protocol.
// It belongs to the engine: it applies to HTTP, TLS and embedded protocols alike.
//
// The parser is a pure function of the bytes received so far, autodetecting the version from
// the first bytes. A caller keeps reading into its buffer while the answer is need_more, then
// drops `consumed` bytes (everything after them belongs to the application) or closes the
// connection without an answer on invalid. Because it re-reads from the start, any split of
// the stream gives the same answer (the fuzzer checks it); the cost is nil, a v1 header is
// at most 107 bytes and a v2 header is only scanned once complete.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace preforkd {

enum class proxy_status : uint8_t { need_more, done, invalid };

struct proxy_result {
    proxy_status status = proxy_status::need_more;
    uint8_t version = 0;  // 1 or 2 once known (even when invalid later)
    size_t consumed = 0;  // done: the header's length, to drop from the buffer
    // done: true for v2 LOCAL (a balancer's own health check), v1 UNKNOWN, and v2 headers with
    // an unspecified family or protocol: keep the peer's own address; `source` is unset.
    bool local = false;
    sockaddr_storage source{};       // done && !local: the client (AF_INET, AF_INET6, AF_UNIX)
    sockaddr_storage destination{};  // done && !local: the address the client connected to
    const char* reason = "";         // invalid: why, a short static phrase for the log
};

// v1: "PROXY " ... "\r\n", 107 bytes at most (spec section 2.1).
inline constexpr size_t proxy_v1_max = 107;
// v2: 16 fixed bytes, then the addresses and TLVs. The spec allows 65535 bytes after the fixed
// part; we refuse more than this, which leaves room for every TLV balancers send in practice
// (AWS VPC endpoint ids, Azure link ids, TLS details) while bounding what a connection can
// make a worker buffer before it has proven anything.
inline constexpr size_t proxy_v2_max = 16 + 4096;
// The most a caller must buffer before the parser answers done or invalid.
inline constexpr size_t proxy_header_max = proxy_v2_max;

proxy_result parse_proxy_header(const uint8_t* data, size_t size) noexcept;

}  // namespace preforkd
