// From a request-target to a file under http.root: split, percent-decode once, normalise,
// and open without ever leaving the root.
#pragma once

#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"

namespace preforkd::http {

// The path and query of a request-target. For the absolute form the scheme and authority
// are dropped (an empty path is "/"). Both stay percent-encoded.
struct target_parts {
    std::string_view path;
    std::string_view query;
};
target_parts split_target(std::string_view target, target_form form) noexcept;

enum class path_result : uint8_t {
    ok,
    bad_request,  // bad %-escape, an encoded '/' or NUL, or ".." above the root: 400
    hidden,       // a segment starts with '.' and serve_hidden is off: 404
};

// Decodes `raw_path` (which starts with '/') once and removes dot segments (RFC 3986
// section 5.2.4), after decoding, so "%2e%2e" is "..". Empty segments collapse. `out` gets
// the segments joined by '/', without a leading '/', "" for the root; a path naming a
// directory (trailing '/', or ending in "." or "..") gets a trailing '/'. `out` is
// reused, so a warm buffer costs no allocation.
path_result normalize_path(std::string_view raw_path, bool serve_hidden, std::string& out);

// Opens `rel` (normalised, relative, "" = the root itself) beneath `root_fd` so that
// neither ".." nor a symlink can lead outside it: openat2(RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS), or, on kernels or sandboxes without openat2, a walk that opens
// one component at a time with O_NOFOLLOW (which refuses every symlink). `use_openat2` is
// the caller's memory of whether openat2 works; it is cleared on ENOSYS. Returns the fd or
// -errno.
int open_beneath(int root_fd, const std::string& rel, int flags, bool& use_openat2) noexcept;

namespace detail {
int open_beneath_walk(int root_fd, const std::string& rel, int flags) noexcept;
}  // namespace detail

}  // namespace preforkd::http
