// Listening sockets: bind one listen address, or recognise an inherited socket's address.
#pragma once

#include <preforkd/config.hpp>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>

namespace preforkd::sys {

// socket + SO_REUSEADDR (+ IPV6_V6ONLY) + bind + listen; non-blocking, close-on-exec.
// A unix socket path left behind by a dead server is replaced; a live one is an error.
// Errors do not repeat the address ("Address already in use", "listen(): ..."): the caller
// names the listen entry.
result<unique_fd> bind_listener(const listen_address& addr, int backlog);

// The address a listening socket is bound to (for inherited sockets: USR2, systemd).
result<listen_address> bound_address(int fd);

}  // namespace preforkd::sys
