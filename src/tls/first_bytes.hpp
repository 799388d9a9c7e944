// What a connection on a TLS listener starts with, judged from its first bytes before any
// OpenSSL call: a TLS handshake record, a plain HTTP request (someone typed http:// for an
// https port), not enough bytes yet, or anything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace preforkd::tls {

enum class first_bytes_kind { need_more, tls_handshake, plain_http, garbage };

// The longest method token looked at before calling the bytes garbage ("PROPPATCH" is 9).
inline constexpr size_t max_method_length = 16;

// A TLS record is 0x16 (handshake), 0x03, 0x00..0x04 (SSL 3.0 .. TLS 1.3 record versions);
// plain HTTP is a method token (RFC 9110 tchar, at most max_method_length) then a space.
// Never reads past `len`; decides as soon as the bytes allow.
first_bytes_kind classify_first_bytes(const uint8_t* data, size_t len) noexcept;

// Looks at the socket's first bytes without taking them (recv MSG_PEEK), so OpenSSL later
// reads the ClientHello whole. need_more also when nothing has arrived yet (EAGAIN): wait for
// the next EPOLLIN (more bytes make a new edge even though the peeked ones stay queued).
// garbage when the peer closed or the socket failed.
first_bytes_kind peek_first_bytes(int fd) noexcept;

// The whole answer to plain HTTP on a TLS port: a plain 400 that says so, then the worker
// closes (Connection: close).
std::string_view plain_http_on_tls_response() noexcept;

}  // namespace preforkd::tls
