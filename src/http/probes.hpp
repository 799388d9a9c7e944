// The load balancer's two endpoints: http.health_path (200 "ok", 503 "draining" once the
// supervisor has set the scoreboard's draining flag) and http.metrics_path (Prometheus text,
// read from the scoreboard, behind the status page's ACL).
#pragma once

#include "http/exchange.hpp"

namespace preforkd::http {

void serve_health(exchange& x);
void serve_metrics(exchange& x);

}  // namespace preforkd::http
