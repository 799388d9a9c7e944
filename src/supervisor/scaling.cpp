#include "supervisor/scaling.hpp"

#include <algorithm>

namespace preforkd {

scaling_decision plan_scaling(const pool_snapshot& pool, const spare_bounds& bounds,
                              int spawn_rate) noexcept {
    scaling_decision d;
    int rate = std::clamp(spawn_rate, 1, max_spawn_rate);
    int room = room_under_max(pool, bounds.max);
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

int retiring_overshoot(int max) noexcept { return std::clamp(max / 4, 1, 8); }

int room_under_max(const pool_snapshot& pool, int max) noexcept {
    int by_serving = max - pool.serving;
    int by_live = max + retiring_overshoot(max) - pool.serving - pool.retiring;
    return std::max(0, std::min(by_serving, by_live));
}

reload_step plan_reload(const reload_view& r) noexcept {
    if (r.fatal) return reload_step::abandon;
    if (r.new_up >= r.floor) return reload_step::finish;
    if (r.new_up > 0 && r.waited_ms >= reload_patience_ms) return reload_step::finish;
    if (r.new_up == 0 && r.waited_ms >= (r.queued ? reload_patience_ms : reload_give_up_ms))
        return reload_step::abandon;
    return reload_step::wait;
}

int64_t crash_backoff_ms(int crashes) noexcept {
    if (crashes <= 0) return 0;
    int64_t d = 100;
    for (int i = 1; i < crashes && d < 10'000; ++i) d *= 2;
    return std::min<int64_t>(d, 10'000);
}

}  // namespace preforkd
