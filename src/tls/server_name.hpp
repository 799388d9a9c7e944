// SNI: which certificate answers a server name. Pure functions, no OpenSSL.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::tls {

// "Example.ORG." -> "example.org": lower case, one trailing dot dropped.
std::string normalize_server_name(std::string_view name);

// Does the subjectAltName DNS `pattern` cover `name`? Both are compared case-insensitively
// with a trailing dot ignored. "*.example.net" covers exactly one label ("a.example.net",
// not "example.net" nor "a.b.example.net"), as RFC 6125 and browsers do.
bool server_name_matches(std::string_view pattern, std::string_view name);

// The index of the certificate for `name` among `names_per_certificate` (each certificate's
// DNS names): an exact name anywhere wins over a wildcard (as nginx does), then the first
// certificate in order; no match or an empty name gives 0, the default certificate.
size_t select_certificate(const std::vector<std::vector<std::string>>& names_per_certificate,
                          std::string_view name);

}  // namespace preforkd::tls
