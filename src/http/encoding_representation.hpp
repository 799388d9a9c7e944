// Which representation of a static file answers a request: the file itself, a
// precompressed sidecar beside it (x.br, x.zst, x.gz), or a compressed copy from the
// shared cache (compress_cache.hpp), chosen by the request's Accept-Encoding.
//
// Sidecars are found when the file's cache entry is made and checked again with it, once a
// second (one fstatat per configured coding), so a sidecar added, changed or removed is
// seen within a second. A sidecar is used only if it is a regular file no older than the
// file itself: an older one was made from an older version, and sending identity is always
// right while a stale copy is not (nginx's gzip_static does not check; a build that writes
// the originals after their sidecars loses nothing but the sidecars).
#pragma once

#include <memory>
#include <string>

#include "http/encoding.hpp"
#include "http/mime.hpp"

namespace preforkd::http {

struct file_entry;
struct exchange;

// Everything representations are found with, for one site: built in one place from that
// site's root and settings (file_cache's constructor) so that sites only change that place.
struct representation_source {
    int root_fd = -1;
    std::string root_id;  // the root folder's "dev:ino": a part of every cache file name
    const encoding_settings* enc = nullptr;
    const compress_cache_settings* cache = nullptr;
    const mime_table* mime = nullptr;
    mutable bool use_openat2 = true;
};

representation_source make_representation_source(int root_fd, const encoding_settings& enc,
                                                 const compress_cache_settings& cache,
                                                 const mime_table& mime);

// After an identity entry is filled: its sidecars, whether compression may apply, and any
// compressed copies already in the cache (made by any worker).
void attach_representations(file_entry& e, const representation_source& src) noexcept;
// False when a sidecar appeared, changed or went away since attach_representations.
bool representations_still_valid(const file_entry& e, const representation_source& src) noexcept;
// Adds the cached copy in `c` to `e` when the cache has it; true if it did.
bool attach_cached_copy(file_entry& e, coding c, const representation_source& src) noexcept;

// The entry to answer `x` with: `e` or one of its variants. When the client would take a
// coding that compression can make but that is not there yet, asks this worker's
// compressor for it (once per version) and answers with the best there is meanwhile.
const std::shared_ptr<file_entry>& choose_representation(exchange& x,
                                                         const std::shared_ptr<file_entry>& e);

}  // namespace preforkd::http
