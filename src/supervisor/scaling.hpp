// Spare-worker scaling, Apache prefork's idle maintenance made explicit and pure: the
// supervisor feeds it a snapshot of the pool each tick and carries out what it returns.
#pragma once

#include <cstdint>

namespace preforkd {

struct pool_snapshot {
    int serving = 0;  // live workers of the current generation that still accept
    int idle = 0;     // of those, the ones with no open connection
    int floor = 0;    // workers.start, moved by TTIN/TTOU: never fewer serving than this
};

struct spare_bounds {
    int min_spare = 1;
    int max_spare = 8;
    int max = 64;
};

struct scaling_decision {
    int spawn = 0;             // fork this many now
    bool retire_idle = false;  // retire one idle worker gracefully
    int next_spawn_rate = 1;   // carry to the next tick
};

// `spawn_rate` is what the previous tick returned (1 at start). Under the floor: spawn up to
// it at once. Fewer idle than min_spare: spawn spawn_rate workers (1, 2, 4 … 32 on
// consecutive short ticks), never above max. More idle than max_spare and above the floor: retire one.
scaling_decision plan_scaling(const pool_snapshot& pool, const spare_bounds& bounds,
                              int spawn_rate) noexcept;

inline constexpr int max_spawn_rate = 32;

// Crash-loop back-off: the delay before the next spawn after `crashes` consecutive workers
// died within a second of their start: 0, then 100 ms doubling to a 10 s cap.
int64_t crash_backoff_ms(int crashes) noexcept;

}  // namespace preforkd
