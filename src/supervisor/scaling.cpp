#include "supervisor/scaling.hpp"

#include <algorithm>

namespace preforkd {

scaling_decision plan_scaling(const pool_snapshot& pool, const spare_bounds& bounds,
                              int spawn_rate) noexcept {
    scaling_decision d;
    int rate = std::clamp(spawn_rate, 1, max_spawn_rate);
    int room = std::max(0, bounds.max - pool.serving);
    if (pool.serving < pool.floor) {
        // Below the floor is not a spare question: restore it at once.
        d.spawn = std::min(pool.floor - pool.serving, room);
        d.next_spawn_rate = 1;
        return d;
    }
    if (pool.idle < bounds.min_spare) {
        // As Apache: a whole batch of `rate`, not just the shortage, since a shortage that
        // outlasts a tick means connections arrive faster than one batch absorbs.
        d.spawn = std::min(rate, room);
        d.next_spawn_rate = d.spawn > 0 ? std::min(rate * 2, max_spawn_rate) : rate;
        return d;
    }
    d.next_spawn_rate = 1;
    if (pool.idle > bounds.max_spare && pool.serving > pool.floor) d.retire_idle = true;
    return d;
}

int64_t crash_backoff_ms(int crashes) noexcept {
    if (crashes <= 0) return 0;
    int64_t d = 100;
    for (int i = 1; i < crashes && d < 10'000; ++i) d *= 2;
    return std::min<int64_t>(d, 10'000);
}

}  // namespace preforkd
