// Compression on the fly, cached: each file version is compressed once, by a background
// thread of the worker that first needs it, into a folder every worker shares, and later
// answers are sent from that folder with sendfile like any file.
//
// A copy is written to a temporary file in the folder and renamed into place, so a reader
// (any worker) sees a whole file or none; two workers compressing the same version at once
// waste a little work and nothing else. Its name is a hash of the site root's identity,
// the path, the ETag and the coding: a new version of the file gets a new name, and the
// old copy ages out. The folder is kept under its bound by deleting the oldest copies.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "http/accept_encoding.hpp"

namespace preforkd::http {

// "<32 hex digits><suffix>", e.g. "0f3a...9c.br": stable across workers, builds and restarts.
std::string cache_file_name(std::string_view root_id, std::string_view path, std::string_view etag,
                            coding c);
// True for names cache_file_name makes and for the temporary files of a write.
bool is_cache_file_name(std::string_view name) noexcept;

// The levels used: what a one-time cost per file version can afford. brotli 11 and zstd 19
// up to 256 KiB, brotli 9 and zstd 12 above (quality 11 is about ten times slower than 9,
// and a worker that stops waits for the block in progress); gzip 9 always.
int compression_level(coding c, uint64_t size) noexcept;

// Where a compression reads from: a copy of a small file's bytes, or the open file.
struct compress_source {
    std::string_view bytes;  // used when fd < 0
    int fd = -1;
    uint64_t size = 0;
};

// Compresses `in` in `c` to `out_fd` (written sequentially). Checks `stop` between chunks.
// Returns 0, or an errno value (EIO for a codec failure, ECANCELED when stopped).
int compress_to(coding c, const compress_source& in, int out_fd,
                const std::atomic<bool>& stop) noexcept;

// Deletes the oldest cache files (by write time) of `dir_fd` until the folder holds at most
// 7/8 of `max_bytes`, when it holds more than `max_bytes`; temporary files left by a crash
// go when older than ten minutes. Bounded: at most `max_scan` names are looked at and
// `max_unlink` deleted per call. Other files in the folder are left alone.
struct evict_result {
    uint64_t bytes_before = 0;
    uint64_t bytes_after = 0;
    size_t removed = 0;
};
evict_result evict_oldest(int dir_fd, uint64_t max_bytes, size_t max_scan = 65536,
                          size_t max_unlink = 1024) noexcept;

// One compression to do: the bytes of one file version and the name its copy gets.
struct compress_job {
    std::string bytes;  // a small file, copied (the worker's copy may be dropped meanwhile)
    unique_fd fd;       // or a larger one, dup'ed
    uint64_t size = 0;
    int64_t mtime_s = 0;  // the version: a file changed while read is not stored
    int64_t mtime_ns = 0;
    std::string name;
    coding c = coding::gzip;
};

// A worker's compression thread and its small queue. The thread starts at the first job;
// the event loop never waits for it (submit only takes a mutex held for a push or a pop).
// The worker must not fork, hence a thread, and one is enough: the work is done once per
// file version for the whole server.
class compressor {
  public:
    static constexpr size_t max_queue = 16;

    compressor(int dir_fd, uint64_t max_bytes) noexcept : dir_fd_(dir_fd), max_bytes_(max_bytes) {}
    ~compressor();  // stops the thread (a compression in progress gives up) and joins it
    compressor(const compressor&) = delete;
    compressor& operator=(const compressor&) = delete;

    bool enabled() const noexcept { return dir_fd_ >= 0; }
    // False when the queue is full or the thread cannot start: the caller asks again later.
    bool submit(compress_job&& job) noexcept;
    // Jobs finished (stored, found already stored, or failed): a change means a copy may
    // have appeared.
    uint64_t completed() const noexcept { return completed_.load(std::memory_order_acquire); }
    // The errno of the first failure since the last call, or 0; for the worker's log.
    int take_error() noexcept { return error_.exchange(0, std::memory_order_relaxed); }

  private:
    void run() noexcept;
    void process(compress_job& job) noexcept;

    int dir_fd_;
    uint64_t max_bytes_;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<compress_job> queue_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> completed_{0};
    std::atomic<int> error_{0};
    uint64_t written_since_evict_ = 0;
    bool evicted_once_ = false;
    uint64_t temp_seq_ = 0;
};

}  // namespace preforkd::http
