// /metrics: the scoreboard and the supervisor's counters in the Prometheus text exposition
// format 0.0.4, every family with # HELP and # TYPE, every name starting with preforkd_.
// A pure render from plain snapshots, like the status page: tested without shared memory.
//
// Counters must never go down while the supervisor lives, yet worker slots are reused:
// a worker that exits takes its counts with it. So the totals are the counts of the live
// slots plus `retired`, the sums the supervisor adds up from each reaped worker's slot
// before it releases the slot (see metrics_snapshot::retired). A new supervisor (restart,
// USR2 upgrade) starts again from zero, which Prometheus handles as a counter reset.
#pragma once

#include <array>
#include <cstdint>
#include <preforkd/scoreboard.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::http {

// The Content-Type of a 0.0.4 text exposition.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

// What one worker counts, single-writer, in its scoreboard slot; also the shape of the
// supervisor's retired sums. Phase 2 adds these as std::atomic<uint64_t> to scoreboard_slot
// (requests, bytes and accepted exist already) and, with a `retired_` prefix, to
// scoreboard_header.
struct traffic_counters {
    uint64_t requests = 0;
    uint64_t bytes = 0;                   // body and head bytes sent
    uint64_t accepted = 0;                // connections accepted
    std::array<uint64_t, 5> responses{};  // by status class: [0] = 1xx ... [4] = 5xx
    uint64_t tls_handshakes = 0;          // completed, resumed included (0 until HTTPS)
    uint64_t tls_resumed = 0;
    uint64_t tls_failures = 0;
    uint64_t proxy_rejected = 0;  // closed for a missing, malformed or untrusted PROXY header

    traffic_counters& operator+=(const traffic_counters& o) noexcept;
    // Counts one response: `status` 100..599 goes to its class; anything else is not counted.
    void count_response(int status) noexcept;
};

// What only the supervisor knows. Phase 2 adds these as std::atomic<uint64_t> to
// scoreboard_header (one writer: the supervisor; readers: every worker's /metrics).
struct supervisor_counters {
    uint64_t reloads = 0;         // successful reloads (HUP that started a new generation)
    uint64_t worker_crashes = 0;  // workers that died within 1 s of their start, or by a signal
    uint64_t fork_failures = 0;   // fork() calls that failed
};

struct metrics_worker {
    uint32_t generation = 0;
    worker_state state = worker_state::empty;
    uint32_t connections = 0;
    traffic_counters counters;
};

struct metrics_snapshot {
    uint32_t generation = 0;
    int64_t uptime_s = 0;
    std::vector<metrics_worker> workers;  // live ones only (state != empty)
    traffic_counters retired;             // sums over every reaped worker
    supervisor_counters supervisor;
};

// Appends the whole exposition to `out`.
void render_metrics(const metrics_snapshot& m, std::string& out);

}  // namespace preforkd::http
