// workers.max_requests with jitter: workers started together must not all retire at the
// same moment, or the pool would empty at once under steady load.
#pragma once

#include <cstdint>

namespace preforkd::detail {

// `base` moved by a pseudo-random amount in [-10 %, +10 %] chosen by `seed` (the pid);
// 0 stays 0 (never retire) and the result is at least 1.
inline uint64_t jittered_max_requests(uint64_t base, uint64_t seed) noexcept {
    if (base == 0) return 0;
    // splitmix64: a well-spread value from a small seed such as consecutive pids.
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    uint64_t span = base / 10;  // 10 %
    if (span == 0) return base;
    uint64_t offset = z % (2 * span + 1);  // 0 .. 2*span
    uint64_t v = base - span + offset;
    return v == 0 ? 1 : v;
}

}  // namespace preforkd::detail
