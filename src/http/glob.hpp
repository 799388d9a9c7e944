// Path globs for site rules (headers, redirects): `*` matches any run of bytes, '/'
// included, and every other byte matches itself. A redirect's target names what the stars
// matched as $1..$9.
//
// Matching is the linear "back up to the last star" walk: no recursion, no allocation, at
// most pattern x path steps, so a rule cannot be written that costs a worker more than that.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace preforkd::http {

inline constexpr size_t max_glob_stars = 9;  // $1..$9
inline constexpr size_t max_glob_length = 1024;

// What each star of a match covered, in pattern order.
struct glob_captures {
    std::array<std::string_view, max_glob_stars> star{};
    size_t count = 0;
};

// Why `pattern` is no glob ("" when it is one): it must start with '/', hold no control
// byte, at most max_glob_stars stars and no "**" (one star already crosses '/').
std::string glob_problem(std::string_view pattern);

// True when `path` matches all of `pattern`. `caps` (optional) gets the stars' matches: an
// earlier star matches as little as it can. The pattern is trusted (glob_problem is empty);
// stars past max_glob_stars still match but are not captured.
bool glob_match(std::string_view pattern, std::string_view path,
                glob_captures* caps = nullptr) noexcept;

// Why `to` is no redirect target for a pattern with `stars` stars ("" when it is one):
// "$1".."$9" name a star of the pattern, "$$" is a '$', any other '$' is refused.
std::string substitution_problem(std::string_view to, size_t stars);

// Appends `to` with each $N replaced by capture N percent-encoded for a URL path (RFC 3986
// pchar and '/' stay as they are) and "$$" by '$'. `to` is trusted (substitution_problem is
// empty); a $N past the captures is replaced by nothing.
void substitute(std::string_view to, const glob_captures& caps, std::string& out);

// Appends `path` percent-encoded for a URL path: RFC 3986 pchar and '/' stay.
void append_encoded_path(std::string& out, std::string_view path);

}  // namespace preforkd::http
