// The error (and redirect) answers: a small HTML page for a status.
#pragma once

#include <string_view>

#include "http/exchange.hpp"

namespace preforkd::http {

// Answers `status` with its small HTML page (only its head for HEAD). `keep`: the connection
// stays open after it; otherwise it closes, and an error that may leave the client still
// sending (a bad head, a refused body) lingers first. `extra_lines` are header lines
// ("Allow: GET, HEAD\r\n", a Location, a Content-Range) added to the head.
void answer_error(exchange& x, int status, bool keep, std::string_view extra_lines = {});

}  // namespace preforkd::http
