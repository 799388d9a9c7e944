// The per-worker cache of what a path resolves to under http.root: an open file with its
// prebuilt headers (and, for small files, its bytes), a redirect, or a negative answer.
//
// The hot path is one hash lookup. An entry is revalidated at most once a second with one
// fstatat (same inode, size and mtime: still good), so an edited file is served fresh
// within a second, and nothing is read from disk while it has not changed.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/accept_encoding.hpp"
#include "http/encoding_representation.hpp"
#include "http/http_config.hpp"

namespace preforkd::http {

enum class lookup_kind : uint8_t {
    file,
    redirect,   // a folder named without its trailing '/': 301 to it
    forbidden,  // a folder without an index file, or no permission: 403
    not_found,  // 404
    error,      // anything else (EMFILE, EIO...): 500, never cached
};

struct file_entry {
    lookup_kind kind = lookup_kind::not_found;
    std::string open_path;  // the file actually opened (an index file for a folder)
    unique_fd fd;           // large files only: small ones live in `body`
    uint64_t size = 0;
    int64_t mtime_s = 0;
    int64_t mtime_ns = 0;
    dev_t dev = 0;
    ino_t ino = 0;
    bool in_memory = false;
    std::string body;             // the whole file when in_memory
    std::string etag;             // "\"...\""
    std::string last_modified;    // IMF-fixdate
    std::string type_lines;       // "Content-Type: ...\r\nLast-Modified: ...\r\nETag:
                                  // ...\r\nAccept-Ranges: bytes\r\n"
    std::string validator_lines;  // "Last-Modified: ...\r\nETag: ...\r\n", for 304
    std::string length_line;      // "Content-Length: <size>\r\n"
    int64_t checked_s = 0;        // monotonic second of the last validation
    int err = 0;                  // errno for `error`, and for `not_found` when it has one
    bool folder = false;          // forbidden: a folder without an index file (autoindex)

    // The head of a full 200 answer but its Connection and final lines, built at its first
    // use (see ok_head) and kept while the file does not change.
    std::string ok_head;
    size_t ok_head_date_at = 0;  // where its Date value starts
    time_t ok_head_date = -1;    // the second that Date value says

    // The same file in other content codings (encoding_representation.hpp), indexed by
    // coding, null when absent. Only an identity entry, the one the cache holds, has any.
    std::array<std::shared_ptr<file_entry>, coding_count> variants;
    uint8_t variant_mask = 0;    // codings present in `variants`
    uint8_t sidecar_mask = 0;    // those that are precompressed files beside this one
    uint8_t compress_mask = 0;   // codings compression may add (a text type, a fitting size)
    uint8_t compress_asked = 0;  // queued for compression by this worker, this version
    uint64_t compress_seen = 0;  // compressor::completed() when last looked
    bool vary = false;           // every answer carries Vary: Accept-Encoding
    size_t counted_memory = 0;   // what the cache counted for it (bodies)
};

// How a file entry's headers are labelled: its Content-Type, its content coding, and for a
// cached compressed copy the original it was made from (whose ETag, with the coding as a
// suffix, and Last-Modified it takes). An encoded entry always carries Vary.
struct entry_labels {
    std::string_view content_type;
    coding encoding = coding::identity;
    const file_entry* version_of = nullptr;
};
// Fills a `file` entry from an open regular file: size, validators, the prebuilt header
// lines, and the bytes themselves when small. On failure the entry is an `error`.
void fill_file_entry(file_entry& e, unique_fd fd, const struct stat& st,
                     const entry_labels& labels) noexcept;
// Adds Vary: Accept-Encoding to an identity entry's lines (before its first answer).
void mark_vary(file_entry& e) noexcept;

class date_cache;
// "HTTP/1.1 200 OK", Server, Date, Content-Length, Content-Type, Last-Modified, ETag and
// Accept-Ranges lines of a file entry: one append on the hot path. Built once per entry;
// afterwards only its Date is rewritten, at most once a second. Throws std::bad_alloc on
// its first use only.
std::string_view ok_head(file_entry& e, const date_cache& dates);

struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

// The cache's key: a normalised path under one site's root. Two sites' "index.html" are two
// entries; a lookup compares a (site, string_view) pair, so it allocates nothing.
struct cache_key {
    uint32_t site = 0;
    std::string path;
};
struct cache_key_view {
    uint32_t site = 0;
    std::string_view path;
};
struct cache_key_hash {
    using is_transparent = void;
    size_t operator()(const cache_key_view& k) const noexcept {
        return std::hash<std::string_view>{}(k.path) ^ (size_t{k.site} * 0x9e3779b97f4a7c15u);
    }
    size_t operator()(const cache_key& k) const noexcept {
        return (*this)(cache_key_view{k.site, k.path});
    }
};
struct cache_key_equal {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
        return a.site == b.site && std::string_view(a.path) == std::string_view(b.path);
    }
};

class file_cache {
  public:
    // Files up to `memory_limit` bytes are read into memory and answered with one write;
    // larger ones keep their fd and go out with sendfile.
    static constexpr uint64_t memory_limit = 32 * 1024;
    static constexpr size_t max_entries = 4096;
    static constexpr size_t max_memory = 64u << 20;

    explicit file_cache(const http_settings& settings);

    // `key` is a normalised path (normalize_path): "" or "dir/" for folders. The returned
    // pointer stays valid until the next lookup; copy the shared_ptr to keep it longer.
    const std::shared_ptr<file_entry>& lookup(std::string_view key, int64_t now_s) noexcept {
        return lookup(0, key, now_s);
    }
    // The same under the root of settings.sites[site] (the [http] root without sites).
    const std::shared_ptr<file_entry>& lookup(uint32_t site, std::string_view key,
                                              int64_t now_s) noexcept;

    size_t size() const noexcept { return map_.size(); }
    // Where other representations come from for a site: its root, its encoding settings,
    // the compressed-copy folder. Built from the settings in one place (the constructor).
    const representation_source& source(uint32_t site) const noexcept {
        return srcs_[site < srcs_.size() ? site : 0];
    }
    bool uses_openat2() const noexcept { return use_openat2_; }

  private:
    std::shared_ptr<file_entry> resolve(uint32_t site, std::string_view key) noexcept;
    bool still_valid(uint32_t site, const file_entry& e) const noexcept;
    // The site's root and index files: the [http] ones when the settings have no sites.
    int root_fd(uint32_t site) const noexcept;
    const std::vector<std::string>& index(uint32_t site) const noexcept;
    void fill_file(uint32_t site, file_entry& e, unique_fd fd, const struct stat& st) noexcept;
    static size_t entry_memory(const file_entry& e) noexcept;

    const http_settings& settings_;
    std::unordered_map<cache_key, std::shared_ptr<file_entry>, cache_key_hash, cache_key_equal>
        map_;
    size_t memory_ = 0;
    bool use_openat2_ = true;
    std::vector<representation_source> srcs_;  // one per site
    std::shared_ptr<file_entry> scratch_;      // for answers that are not cached
    std::shared_ptr<file_entry> oom_;
};

}  // namespace preforkd::http
