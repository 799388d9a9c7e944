// The answers site rules add to the static file handler (site_rules.hpp): redirects, extra
// headers, error pages, folder listings. Each reads the rules and the root from the
// exchange (exchange::rules, exchange::root_fd, exchange::path), which route() sets.
#pragma once

#include <string_view>

#include "http/exchange.hpp"
#include "http/path.hpp"
#include "http/site_rules.hpp"

namespace preforkd::http {

// https_redirect on a plain connection: 308 to https://host/path?query, the Host's port
// dropped (the absolute-form target's authority wins over Host). False when it does not
// apply (TLS, off, or no host to name: an HTTP/1.0 request without Host is served).
// Most sites set none of these rules: the inline test keeps that case to a branch on the
// per-request path, and the work (and its call) to the sites that have them.
bool answer_https_redirect_now(exchange& x, const target_parts& parts);
inline bool answer_https_redirect(exchange& x, const target_parts& parts) {
    return !x.secure && x.rules && x.rules->https_redirect && answer_https_redirect_now(x, parts);
}

// The first redirect rule whose glob matches x.path answers, with $N substituted and the
// request's query appended. False when none matches.
bool answer_redirect_rule_now(exchange& x, std::string_view query);
inline bool answer_redirect_rule(exchange& x, std::string_view query) {
    return x.rules && !x.rules->redirects.empty() && answer_redirect_rule_now(x, query);
}

// Appends the header lines of every `headers` rule matching x.path, in rule order (a later
// rule's value for a name replaces an earlier one's; an empty value drops the header).
void append_rule_headers_now(exchange& x);
inline void append_rule_headers(exchange& x) {
    if (x.rules && !x.rules->headers.empty()) append_rule_headers_now(x);
}

// Answers `status` with the site's error page for it, if it has one and it is a readable
// file: its bytes, its Content-Type, the original status, `extra_lines` and the rule headers.
// False otherwise (the caller sends the built-in page).
bool answer_error_page(exchange& x, int status, bool keep, std::string_view extra_lines);

// Entries listed at most by one autoindex page: a folder holding more is cut there, and the
// page says so. Reading and sorting them happens inside the worker's event loop turn.
inline constexpr size_t max_listing_entries = 5000;

// Answers 200 with an HTML listing of the folder x.path (normalised, ending in '/' or ""
// for the root). False when the folder cannot be opened (the caller answers 403 or 500).
bool answer_listing(exchange& x);

}  // namespace preforkd::http
