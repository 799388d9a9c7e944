// Request routing: which handler answers a parsed request.
#pragma once

#include <string>

#include "http/exchange.hpp"

namespace preforkd::http {

// Answers the request in `x.head` (x.keep, x.minor and x.head_only already set by the
// session) with the handler its method and path call for. `path` is a string of the
// session's, reused for the normalised path.
void route(exchange& x, std::string& path);

}  // namespace preforkd::http
