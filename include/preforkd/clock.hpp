// Clocks. Timeouts use the monotonic clock (immune to date changes); logs and HTTP dates
// use the wall clock.
#pragma once

#include <time.h>

#include <cstdint>

namespace preforkd {

// CLOCK_MONOTONIC in milliseconds.
inline int64_t monotonic_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

// CLOCK_REALTIME in milliseconds since the epoch.
inline int64_t wall_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace preforkd
