// Session-ticket keys shared by every worker of a generation, so that a ticket issued by one
// worker resumes on any other, and on the next generation after a reload.
//
// The ring is plain data (no pointers, no constructors) so that it can sit in the scoreboard's
// shared mapping: the supervisor writes it (init before the first fork, rotate on the 12 h
// timer and on each reload), workers only read it. A rotation is a handful of memcpy; readers
// take a consistent copy with the sequence counter (a seqlock: even = stable, odd = being
// written), through std::atomic_ref, so no lock lives in shared memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace preforkd::tls {

// The layout OpenSSL's ticket callback needs: a 16-byte name sent in the ticket, AES-256 key
// for the ticket's encryption, HMAC-SHA256 key for its integrity.
struct ticket_key {
    uint8_t name[16];
    uint8_t aes_key[32];
    uint8_t hmac_key[32];
};

struct ticket_key_ring {
    uint32_t sequence;      // seqlock: odd while the supervisor writes
    uint32_t has_previous;  // 0 until the first rotation
    int64_t rotated_at;     // seconds (any monotonic clock the caller uses), of `current`
    uint64_t rotations;     // how many times the keys changed since init
    ticket_key current;     // encrypts new tickets, decrypts
    ticket_key previous;    // decrypts only (tickets it opens are renewed with `current`)
};
static_assert(std::is_trivially_copyable_v<ticket_key_ring> &&
              std::is_standard_layout_v<ticket_key_ring>);

inline constexpr std::chrono::seconds ticket_rotation_interval{12 * 3600};

// Fresh random keys (RAND_bytes; never written to disk), no previous key. False when the
// random generator fails (the supervisor must then refuse to start TLS).
bool init_ticket_keys(ticket_key_ring& ring, int64_t now_s) noexcept;

// Rotates when `reload` or when `now_s` is at least 12 h after the last rotation: current
// becomes previous, a new random current. Returns whether it rotated (false also when the
// random generator failed, leaving the ring as it was).
bool rotate_ticket_keys(ticket_key_ring& ring, int64_t now_s, bool reload) noexcept;

// A consistent copy of a ring another process may be rotating.
ticket_key_ring snapshot_ticket_keys(const ticket_key_ring& shared) noexcept;

enum class ticket_key_use { unknown, current, previous };

// Which key of `ring` (a snapshot) has this name.
ticket_key_use find_ticket_key(const ticket_key_ring& ring, const uint8_t name[16]) noexcept;

}  // namespace preforkd::tls
