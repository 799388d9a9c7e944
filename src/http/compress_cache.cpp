#include "http/compress_cache.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <preforkd/detail/syscall.hpp>

namespace preforkd::http {

namespace {

// FNV-1a, 64 bits: small, stable across builds (std::hash is not promised to be), and two
// runs from different bases give a 128-bit name, where an accidental collision is not a
// concern for a cache of at most millions of files.
struct fnv64 {
    uint64_t h;
    void add(std::string_view s) noexcept {
        for (char c : s) {
            h ^= static_cast<unsigned char>(c);
            h *= 0x100000001b3ULL;
        }
        h ^= 0xff;  // a separator no text byte equals: ("ab","c") differs from ("a","bc")
        h *= 0x100000001b3ULL;
    }
};

}  // namespace

std::string cache_file_name(std::string_view root_id, std::string_view path, std::string_view etag,
                            coding c) {
    fnv64 a{0xcbf29ce484222325ULL};
    fnv64 b{0x84222325cbf29ce4ULL};
    for (std::string_view part : {root_id, path, etag, coding_name(c)}) {
        a.add(part);
        b.add(part);
    }
    return fmt::format("{:016x}{:016x}{}", a.h, b.h, coding_suffix(c));
}

bool is_cache_file_name(std::string_view name) noexcept {
    if (name.substr(0, 5) == ".tmp-") return true;
    if (name.size() < 32) return false;
    for (size_t i = 0; i < 32; ++i) {
        const char ch = name[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    }
    const std::string_view rest = name.substr(32);
    return rest == ".br" || rest == ".zst" || rest == ".gz";
}

compressor::~compressor() {
    {
        std::lock_guard lock(mutex_);
        stop_.store(true, std::memory_order_relaxed);
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool compressor::submit(compress_job&& job) noexcept {
    if (dir_fd_ < 0) return false;
    try {
        std::lock_guard lock(mutex_);
        if (queue_.size() >= max_queue) return false;
        if (!thread_.joinable()) {
            // The worker reads its signals from a signalfd with them blocked; the thread
            // inherits the mask, and blocking everything here makes sure that no signal is
            // ever delivered to it instead.
            sigset_t all, old;
            ::sigfillset(&all);
            ::pthread_sigmask(SIG_BLOCK, &all, &old);
            try {
                thread_ = std::thread([this] { run(); });
            } catch (...) {
                ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
                return false;
            }
            ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        }
        queue_.push_back(std::move(job));
    } catch (...) {
        return false;
    }
    wake_.notify_one();
    return true;
}

void compressor::run() noexcept {
    for (;;) {
        compress_job job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock,
                       [this] { return stop_.load(std::memory_order_relaxed) || !queue_.empty(); });
            if (stop_.load(std::memory_order_relaxed)) return;
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        process(job);
        completed_.fetch_add(1, std::memory_order_release);
    }
}

void compressor::process(compress_job& job) noexcept {
    struct stat st {};
    // Another worker (or this one, asked twice) may have stored it meanwhile.
    if (::fstatat(dir_fd_, job.name.c_str(), &st, 0) == 0) return;
    std::string temp;
    int out = -1;
    // pid, compressor and sequence: unique among live writers; a name left by a crashed
    // worker whose pid came back is skipped (EEXIST) and removed later by evict_oldest.
    for (int attempt = 0; attempt < 8 && out < 0; ++attempt) {
        try {
            temp = fmt::format(".tmp-{}-{:x}-{}", ::getpid(), reinterpret_cast<uintptr_t>(this),
                               ++temp_seq_);
        } catch (...) {
            return;
        }
        out = ::openat(dir_fd_, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0 && errno != EEXIST) break;
    }
    if (out < 0) {
        int expected = 0;
        error_.compare_exchange_strong(expected, errno, std::memory_order_relaxed);
        return;
    }
    unique_fd out_fd(out);
    compress_source src{job.bytes, job.fd.get(), job.size};
    int err = compress_to(job.c, src, out_fd.get(), stop_);
    if (err == 0 && job.fd.get() >= 0) {
        // Written to while it was read: the copy may mix two versions; not stored (the next
        // request sees the new version and asks again).
        struct stat now {};
        if (::fstat(job.fd.get(), &now) != 0 || static_cast<uint64_t>(now.st_size) != job.size ||
            now.st_mtim.tv_sec != job.mtime_s || now.st_mtim.tv_nsec != job.mtime_ns)
            err = EAGAIN;
    }
    struct stat written {};
    if (err == 0 && ::fstat(out_fd.get(), &written) != 0) err = errno;
    out_fd.reset();
    if (err == 0 && ::renameat(dir_fd_, temp.c_str(), dir_fd_, job.name.c_str()) != 0) err = errno;
    if (err != 0) {
        ::unlinkat(dir_fd_, temp.c_str(), 0);
        if (err != EAGAIN && err != ECANCELED) {
            int expected = 0;
            error_.compare_exchange_strong(expected, err, std::memory_order_relaxed);
        }
        return;
    }
    // Eviction is a scan of the folder: done at the first store and then after each
    // eighth of the bound written, so its cost is spread over many stores.
    written_since_evict_ += static_cast<uint64_t>(written.st_size);
    if (!evicted_once_ || written_since_evict_ >= max_bytes_ / 8) {
        evicted_once_ = true;
        written_since_evict_ = 0;
        evict_oldest(dir_fd_, max_bytes_);
    }
}

}  // namespace preforkd::http
