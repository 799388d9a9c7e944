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

// traffic_counters (what a worker counts in its slot, and the retired sums) and
// supervisor_counters (reloads, crashes, fork failures) are the scoreboard's own
// (preforkd/scoreboard.hpp): the same shapes here, read out as plain numbers.

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

// Reads the scoreboard consistently (see scoreboard::read_consistent): a worker reaped
// meanwhile is counted once, in its slot or in the retired sums. `now_ms` is monotonic.
metrics_snapshot take_metrics(const scoreboard& board, int64_t now_ms);

// Appends the whole exposition to `out`.
void render_metrics(const metrics_snapshot& m, std::string& out);

}  // namespace preforkd::http
