// What a site does beyond serving its files: error pages, the SPA fallback, folder
// listings, extra headers, redirects and the move to HTTPS (DESIGN.md, "Sites").
//
// [http]'s site_rules (http_settings::rules) are every site's defaults; each [[site]] has
// its own (site::rules). The handlers reach
// it, and the root it applies to, through the exchange (exchange::rules, exchange::root_fd),
// set in one place by route().
#pragma once

#include <cstdint>
#include <preforkd/config.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/glob.hpp"

namespace preforkd::http {

struct header_rule {
    std::string match;  // a glob on the decoded request path (glob.hpp)
    // Names and values in the order the rule lists them. An empty value removes the header
    // that an earlier rule set.
    std::vector<std::pair<std::string, std::string>> set;
};

struct redirect_rule {
    std::string match;  // a glob on the decoded request path
    std::string to;     // "/new/$1" or "https://host/$1": $1..$9 are the stars' matches
    int status = 308;   // 301, 302, 303, 307 or 308
};

struct error_page {
    int status = 0;
    std::string path;  // as written: "/404.html"
    std::string key;   // normalised like a request path, for the file cache: "404.html"
};

struct site_rules {
    std::vector<error_page> error_pages;  // sorted by status
    std::string fallback;                 // "" = none; else as written ("/index.html")
    std::string fallback_key;             // normalised like a request path
    bool autoindex = false;
    std::vector<header_rule> headers;
    std::vector<redirect_rule> redirects;
    bool https_redirect = false;

    // The page for `status`, or null.
    const error_page* page_for(int status) const noexcept;
    bool empty() const noexcept {
        return error_pages.empty() && fallback.empty() && !autoindex && headers.empty() &&
               redirects.empty() && !https_redirect;
    }
};

// Limits, so that a rule set cannot make one request cost much (see the man page).
inline constexpr size_t max_header_rules = 256;
inline constexpr size_t max_redirect_rules = 256;
inline constexpr size_t max_rule_headers = 32;  // distinct header names over all rules

// Reads error_pages, fallback, autoindex, headers, redirects and https_redirect from `r`;
// a key the table does not set keeps its value from `defaults` (a whole list or table: a
// site's `headers` replaces [http]'s, it does not add to it). Problems are recorded in `r`
// with their `file:line: table.key` and reported by r.finish(), like any getter's.
site_rules parse_site_rules(table_reader& r, const site_rules& defaults);

// Why `name`/`value` cannot be a header set by a rule ("" when they can): a token name
// (RFC 9110 section 5.1) that the server does not write itself, a value without CR, LF,
// NUL or other control bytes but HTAB.
std::string header_problem(std::string_view name, std::string_view value);

// glob_match() of a rule's pattern ("/assets/*") against a normalised request path
// ("assets/app.js": no leading '/', see normalize_path).
bool rule_matches(std::string_view pattern, std::string_view normalised_path,
                  glob_captures* caps = nullptr) noexcept;

}  // namespace preforkd::http
