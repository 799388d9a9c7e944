// Accept-Encoding (RFC 9110 section 12.5.3): what content codings a client takes, with
// their q-values, and the choice of one representation among those a file has.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace preforkd::http {

// The content codings this server can send. `identity` is the file itself.
enum class coding : uint8_t { identity, br, zstd, gzip };
inline constexpr size_t coding_count = 4;

inline constexpr unsigned coding_bit(coding c) noexcept { return 1u << static_cast<unsigned>(c); }
// "br", "zstd", "gzip" ("identity" for identity): the Content-Encoding token and config word.
std::string_view coding_name(coding c) noexcept;
// The file-name suffix of a precompressed sidecar and of a cached file: ".br", ".zst", ".gz".
std::string_view coding_suffix(coding c) noexcept;
// The coding named by a config word (exact, lower case); false for anything else.
bool coding_from_name(std::string_view name, coding& out) noexcept;

// One parsed Accept-Encoding field. A q-value is kept in thousandths (0..1000); -1 means the
// field did not name that coding. `any` is the "*" member.
struct accept_encoding {
    std::array<int16_t, coding_count> q{-1, -1, -1, -1};
    int16_t any = -1;

    // The weight the client gives `c`: its own member, else "*", else 0, except identity,
    // which is acceptable unless excluded (by "identity;q=0", or "*;q=0" without an
    // identity member) but, when not named, weighs the least possible (1): a client that
    // sends "gzip;q=0.5" wants gzip, as every server reads it.
    int quality(coding c) const noexcept;
};

// Parses a field value (several lines already joined by ", "). Codings are compared without
// case and "x-gzip" counts as "gzip" (RFC 9110 section 8.4.1.3). A member with a malformed
// weight is ignored as a whole (rather than read as q=1, which would turn "br;q=abc" into a
// preference); unknown parameters are ignored; when a coding is named twice the first
// member counts. Never fails: garbage yields "nothing named".
accept_encoding parse_accept_encoding(std::string_view value) noexcept;

// The representation to send, among identity and the codings in `available` (coding_bit
// mask) listed in the server's order of preference `order` (ties go to the earlier one,
// and any coding beats identity on a tie, as nginx and Caddy do). Without an Accept-Encoding
// field (`present` false) the answer is identity: most clients that send none cannot
// decode anything else, whatever RFC 9110 allows. When the client refuses everything,
// identity included, identity is sent anyway (nginx and Caddy do the same; a 406 helps
// nobody and RFC 9110 section 12.5.3 allows either).
coding choose_coding(const accept_encoding& ae, bool present, unsigned available,
                     const coding* order, size_t order_size) noexcept;

}  // namespace preforkd::http
