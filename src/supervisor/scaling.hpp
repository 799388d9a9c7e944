// Spare-worker scaling, Apache prefork's idle maintenance made explicit and pure: the
// supervisor feeds it a snapshot of the pool each tick and carries out what it returns.
#pragma once

#include <cstdint>

namespace preforkd {

// A generation's workers, counted once per decision (supervisor::snapshot).
struct generation_snapshot {
    int starting = 0;  // forked, not yet serving
    int idle = 0;      // serving, no open connection
    int busy = 0;      // serving, with connections
    int retiring = 0;  // told (or decided) to go: still alive, no longer accepting
    int healthy = 0;   // alive past the crash window (1 s), retiring or not
    int young = 0;     // serving (or starting) and still within the crash window
    int up() const noexcept { return idle + busy; }
    int serving() const noexcept { return starting + idle + busy; }
    int live() const noexcept { return serving() + retiring; }
};

struct pool_snapshot {
    int serving = 0;   // live workers of the current generation that still accept
    int idle = 0;      // of those, the ones with no open connection (or starting)
    int floor = 0;     // workers.start, moved by TTIN/TTOU: never fewer serving than this
    int retiring = 0;  // the current generation's workers on their way out, still alive
};

// Retiring workers count against workers.max, but up to this many more may live, so that a
// worker retiring by itself (max_requests) is replaced before it leaves: max + this, at most.
int retiring_overshoot(int max) noexcept;
// How many more workers may be forked for the current generation within workers.max.
int room_under_max(const pool_snapshot& pool, int max) noexcept;

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
// consecutive short ticks), never above max. More idle than max_spare and above the floor: retire
// one.
scaling_decision plan_scaling(const pool_snapshot& pool, const spare_bounds& bounds,
                              int spawn_rate) noexcept;

inline constexpr int max_spawn_rate = 32;

// A reload in progress (HUP): where its new generation stands.
struct reload_view {
    int new_up = 0;         // the new generation's workers serving
    int floor = 0;          // the new generation's workers.start
    int64_t waited_ms = 0;  // since the HUP
    bool fatal = false;     // a new worker exited with exit_code::fatal: it cannot start
    bool queued = false;    // another HUP waits: a stalled generation is given up sooner
};

enum class reload_step {
    wait,     // not up yet: the old generation keeps serving (at its floor)
    finish,   // the new generation serves: retire the old one
    abandon,  // the new generation cannot come up: it goes, the old one stays current
};

// Half-up counts as up after reload_patience_ms (the spare scaling fills the rest). Nothing
// up after reload_give_up_ms (reload_patience_ms if another HUP waits: the operator has most
// likely fixed the file), or a fatal exit, abandons it.
inline constexpr int64_t reload_patience_ms = 5000;
inline constexpr int64_t reload_give_up_ms = 10'000;
inline constexpr int64_t crash_window_ms = 1000;  // dying sooner after start counts as a crash
reload_step plan_reload(const reload_view& r) noexcept;

// Crash-loop back-off: the delay before the next spawn after `crashes` consecutive workers
// died within a second of their start: 0, then 100 ms doubling to a 10 s cap.
int64_t crash_backoff_ms(int crashes) noexcept;

}  // namespace preforkd
