// /healthz (http.health_path): what a load balancer's check reads. 200 "ok" while the server
// serves; 503 "draining" from the moment it is told to stop (TERM with server.shutdown_delay,
// or QUIT), so that the balancer stops sending new clients before the listeners close.
#pragma once

#include <string_view>

namespace preforkd::http {

struct health_answer {
    int status;
    std::string_view body;  // with its final newline, text/plain
};

// `draining` is read by the caller from the scoreboard header (set by the supervisor).
constexpr health_answer health_check(bool draining) noexcept {
    return draining ? health_answer{503, "draining\n"} : health_answer{200, "ok\n"};
}

}  // namespace preforkd::http
