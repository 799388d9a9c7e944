// Which path sends a TLS connection's records and files: the kernel (kTLS, SSL_sendfile) or
// userspace (SSL_write of pread buffers). Kept small and pure so the choice is unit-tested on
// machines without the kernel's `tls` ULP.
#pragma once

#include <string_view>

namespace preforkd::tls {

enum class send_path { userspace, ktls };

std::string_view to_string(send_path p) noexcept;

// Does the content of /proc/sys/net/ipv4/tcp_available_ulp ("mptcp tls\n") list "tls"?
bool ulp_list_has_tls(std::string_view available_ulp) noexcept;

// Reads /proc/sys/net/ipv4/tcp_available_ulp once per call; false when unreadable.
bool kernel_offers_tls_ulp() noexcept;

// The same, read once per process and remembered: the worker calls it at start (for its log
// line, before any chroot hides /proc); tls_transport asks it after each handshake.
bool kernel_offers_tls_ulp_cached() noexcept;

// Whether a new SSL_CTX asks OpenSSL for kTLS (SSL_OP_ENABLE_KTLS): only when the setting is
// on AND the kernel offers the tls ULP. Without the ULP, OpenSSL would still try, and fail, a
// setsockopt(TCP_ULP) and a setsockopt(TLS_TX) on every connection's handshake.
bool request_ktls(bool ktls_setting, bool kernel_ulp) noexcept;

// kTLS only when all three agree: the `ktls` setting, the kernel's ULP, and OpenSSL having
// actually switched the socket to kernel sends (BIO_get_ktls_send after the handshake).
send_path choose_send_path(bool ktls_setting, bool kernel_ulp, bool bio_ktls_send) noexcept;

}  // namespace preforkd::tls
