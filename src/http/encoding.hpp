// Content codings of static files: which precompressed sidecars to look for and which
// codings to produce on the fly (per site: encoding_settings), and the one cache folder
// the compressed copies go to (global: compress_cache_settings).
#pragma once

#include <cstdint>
#include <preforkd/config.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "http/accept_encoding.hpp"

namespace preforkd::http {

// One site's choices (site::encoding: a [[site]] table reads the same keys with [http]'s
// values as defaults; without [[site]], [http]'s). The order of each list is the server's
// preference on equal q-values.
struct encoding_settings {
    // x.br, x.zst, x.gz beside x, served when the client accepts them.
    std::vector<coding> precompressed{coding::br, coding::zstd, coding::gzip};
    // Codings made on the fly for text types, compressed once per file version and cached.
    std::vector<coding> compress;

    unsigned precompressed_mask() const noexcept { return mask_of(precompressed); }
    unsigned compress_mask() const noexcept { return mask_of(compress); }
    static unsigned mask_of(const std::vector<coding>& list) noexcept {
        unsigned m = 0;
        for (coding c : list) m |= coding_bit(c);
        return m;
    }
};

// Reads `precompressed` and `compress` from `r` (words "br", "zstd", "gzip"; a word
// repeated or unknown is a `file:line: table.key` error through r.fail).
encoding_settings parse_encoding_settings(table_reader& r, const encoding_settings& defaults);

// The cache of compressed copies, one for the whole server (not per site: one folder, one
// bound, shared by every worker). Keys of [http]: compress_cache, compress_cache_max,
// compress_max_size.
struct compress_cache_settings {
    std::string path = "/var/cache/preforkd";
    // Opened (O_PATH) by the supervisor when some site compresses; -1 otherwise.
    unique_fd dir_fd;
    uint64_t max_bytes = uint64_t{256} << 20;        // the folder's bound
    uint64_t max_file_size = uint64_t{8} << 20;      // larger files are sent as they are
    static constexpr uint64_t min_file_size = 1024;  // smaller ones gain nothing
};

// Reads the three keys; opens the folder when `needed` (some site compresses).
void parse_compress_cache_settings(table_reader& r, bool needed, compress_cache_settings& out);
// Opens out.path (O_PATH) for the workers, recording a problem on `r` when it cannot: what
// parse_compress_cache_settings does when `needed`, and what the [[site]] parse does when
// only a site compresses.
void open_compress_cache(table_reader& r, compress_cache_settings& out);

// "256MiB", "1GiB", "512KiB", "4096" (bytes; K/M/G are read as KiB/MiB/GiB); false if bad.
bool parse_byte_size(std::string_view text, uint64_t& out) noexcept;

// Text types worth compressing: text/*, JSON, JavaScript, XML, SVG (a Content-Type value,
// parameters allowed).
bool compressible_type(std::string_view content_type) noexcept;

}  // namespace preforkd::http
