// The static file handler: a path under http.root answered from the file cache, with
// conditionals (304), a single range (206/416), folder redirects and index files.
#pragma once

#include <string>
#include <string_view>

#include "http/exchange.hpp"

namespace preforkd::http {

// Answers GET/HEAD of `path` (normalised, relative to http.root; see normalize_path) with
// the file, a 301 to the folder's URL, 403, 404 or 500. `query` is kept on a redirect.
void serve_path(exchange& x, const std::string& path, std::string_view query);

}  // namespace preforkd::http
