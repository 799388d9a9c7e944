// The status page: the shared scoreboard as Apache-like text (?auto) or JSON (?json), and
// the handler that answers it.
// Rendering works on plain snapshots, so it is tested without a shared mapping.
#pragma once

#include <array>
#include <cstdint>
#include <preforkd/scoreboard.hpp>
#include <string>
#include <vector>

#include "http/exchange.hpp"

namespace preforkd::http {

// The status page handler: the scoreboard as text, or as JSON when `query` holds "json";
// 403 to peers outside http.status_allow.
void serve_status(exchange& x, std::string_view query);

struct worker_snapshot {
    uint32_t slot = 0;
    int32_t pid = 0;
    uint32_t generation = 0;
    worker_state state = worker_state::empty;
    uint32_t connections = 0;
    uint64_t requests = 0;
    uint64_t bytes = 0;
    uint64_t accepted = 0;
    int64_t heartbeat_age_ms = 0;
    uint64_t tls_handshakes = 0;  // completed, resumed included
    uint64_t tls_resumed = 0;
    uint64_t tls_failures = 0;
    uint8_t tls_send_path = 0;            // 0: no tls listener, 1: userspace, 2: ktls
    std::array<uint64_t, 5> responses{};  // by status class, [0] = 1xx
};

// Requests one [[site]] answered in this generation (the counters are per configuration).
struct site_snapshot {
    std::string name;  // its first name, "" for a site without names
    uint64_t requests = 0;
};

struct status_snapshot {
    int32_t supervisor_pid = 0;
    uint32_t generation = 0;
    int64_t uptime_s = 0;
    std::vector<worker_snapshot> workers;  // live ones only
    // Reaped workers' counts (the totals never go down while the supervisor lives) and the
    // supervisor's own counters.
    traffic_counters retired;
    supervisor_counters supervisor;
    std::vector<site_snapshot> sites;  // empty without [[site]]: no site lines at all
};

// Reads slots [0, used()) whose state is not empty, and the retired sums, consistently
// (scoreboard::read_consistent). `now_ms` is monotonic (heartbeats),
// `wall_now_ms` the wall clock (uptime only when the header has no monotonic start).
status_snapshot take_snapshot(const scoreboard& board, int64_t now_ms, int64_t wall_now_ms);

void render_status_text(const status_snapshot& s, std::string_view version, std::string& out);
void render_status_json(const status_snapshot& s, std::string& out);

}  // namespace preforkd::http
