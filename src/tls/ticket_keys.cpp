#include "tls/ticket_keys.hpp"

#include <openssl/rand.h>

#include <atomic>
#include <cstring>

namespace preforkd::tls {

namespace {

bool random_key(ticket_key& k) noexcept {
    return RAND_bytes(reinterpret_cast<unsigned char*>(&k), sizeof k) == 1;
}

// The writer's half of the seqlock: odd while `change` runs.
template <class F>
void write_locked(ticket_key_ring& ring, F&& change) noexcept {
    std::atomic_ref<uint32_t> seq(ring.sequence);
    seq.fetch_add(1, std::memory_order_acq_rel);
    std::atomic_thread_fence(std::memory_order_release);
    change();
    seq.fetch_add(1, std::memory_order_release);
}

}  // namespace

bool init_ticket_keys(ticket_key_ring& ring, int64_t now_s) noexcept {
    ticket_key fresh;
    if (!random_key(fresh)) return false;
    write_locked(ring, [&] {
        ring.has_previous = 0;
        ring.rotated_at = now_s;
        ring.rotations = 0;
        ring.current = fresh;
        std::memset(&ring.previous, 0, sizeof ring.previous);
    });
    return true;
}

bool rotate_ticket_keys(ticket_key_ring& ring, int64_t now_s, bool reload) noexcept {
    if (!reload && now_s - ring.rotated_at < ticket_rotation_interval.count()) return false;
    ticket_key fresh;
    if (!random_key(fresh)) return false;
    write_locked(ring, [&] {
        ring.previous = ring.current;
        ring.has_previous = 1;
        ring.current = fresh;
        ring.rotated_at = now_s;
        ++ring.rotations;
    });
    return true;
}

ticket_key_ring snapshot_ticket_keys(const ticket_key_ring& shared) noexcept {
    // atomic_ref needs a non-const object; the reader never writes through it.
    std::atomic_ref<uint32_t> seq(const_cast<uint32_t&>(shared.sequence));
    ticket_key_ring copy;
    for (;;) {
        uint32_t before = seq.load(std::memory_order_acquire);
        if (before & 1u) continue;  // a rotation is a few memcpy: spin
        std::memcpy(&copy, &shared, sizeof copy);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (seq.load(std::memory_order_relaxed) == before) return copy;
    }
}

ticket_key_use find_ticket_key(const ticket_key_ring& ring, const uint8_t name[16]) noexcept {
    if (std::memcmp(ring.current.name, name, sizeof ring.current.name) == 0)
        return ticket_key_use::current;
    if (ring.has_previous && std::memcmp(ring.previous.name, name, sizeof ring.previous.name) == 0)
        return ticket_key_use::previous;
    return ticket_key_use::unknown;
}

}  // namespace preforkd::tls
