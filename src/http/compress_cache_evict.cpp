// Keeping the shared cache folder under its bound (see compress_cache.hpp).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "http/compress_cache.hpp"

namespace preforkd::http {

namespace {

struct cached_file {
    int64_t mtime_ns;
    uint64_t size;
    std::string name;
};

constexpr int64_t stale_temp_s = 600;

}  // namespace

evict_result evict_oldest(int dir_fd, uint64_t max_bytes, size_t max_scan,
                          size_t max_unlink) noexcept {
    evict_result r;
    try {
        // The folder fd may be O_PATH: open "." beneath it for reading the names.
        int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return r;
        DIR* dir = ::fdopendir(fd);
        if (dir == nullptr) {
            ::close(fd);
            return r;
        }
        std::vector<cached_file> files;
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        size_t scanned = 0;
        while (const dirent* d = ::readdir(dir)) {
            if (++scanned > max_scan) break;
            const std::string_view name = d->d_name;
            if (!is_cache_file_name(name)) continue;
            struct stat st {};
            if (::fstatat(dir_fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (name.substr(0, 5) == ".tmp-") {
                // A write in progress is young; one left by a crashed worker is removed.
                if (now.tv_sec - st.st_mtim.tv_sec > stale_temp_s && r.removed < max_unlink &&
                    ::unlinkat(dir_fd, d->d_name, 0) == 0)
                    ++r.removed;
                continue;
            }
            files.push_back({st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                             static_cast<uint64_t>(st.st_size), std::string(name)});
            r.bytes_before += static_cast<uint64_t>(st.st_size);
        }
        ::closedir(dir);
        r.bytes_after = r.bytes_before;
        if (r.bytes_before <= max_bytes) return r;
        const uint64_t target = max_bytes - max_bytes / 8;
        std::sort(files.begin(), files.end(), [](const cached_file& a, const cached_file& b) {
            return a.mtime_ns < b.mtime_ns;
        });
        for (const cached_file& f : files) {
            if (r.bytes_after <= target || r.removed >= max_unlink) break;
            // A worker sending this copy keeps its open fd: deleting it is always safe.
            if (::unlinkat(dir_fd, f.name.c_str(), 0) == 0) {
                r.bytes_after -= f.size;
                ++r.removed;
            }
        }
    } catch (...) {
        // Out of memory: try again at the next store.
    }
    return r;
}

}  // namespace preforkd::http
