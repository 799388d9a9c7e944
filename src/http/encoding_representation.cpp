#include "http/encoding_representation.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "http/compress_cache.hpp"
#include "http/exchange.hpp"
#include "http/http_service.hpp"
#include "http/path.hpp"
#include "http/static_file.hpp"

namespace preforkd::http {

namespace {

constexpr int open_flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

bool older(const struct stat& st, const file_entry& e) noexcept {
    return st.st_mtim.tv_sec < e.mtime_s ||
           (st.st_mtim.tv_sec == e.mtime_s && st.st_mtim.tv_nsec < e.mtime_ns);
}

bool same_file(const struct stat& st, const file_entry& v) noexcept {
    return st.st_ino == v.ino && st.st_dev == v.dev &&
           static_cast<uint64_t>(st.st_size) == v.size && st.st_mtim.tv_sec == v.mtime_s &&
           st.st_mtim.tv_nsec == v.mtime_ns;
}

void add_variant(file_entry& e, coding c, std::shared_ptr<file_entry> v) noexcept {
    e.variants[static_cast<size_t>(c)] = std::move(v);
    e.variant_mask = static_cast<uint8_t>(e.variant_mask | coding_bit(c));
}

void attach_sidecars(file_entry& e, const representation_source& src) {
    std::string path;
    for (coding c : src.enc->precompressed) {
        path.assign(e.open_path).append(coding_suffix(c));
        int fd = open_beneath(src.root_fd, path, open_flags, src.use_openat2);
        if (fd < 0) continue;
        unique_fd file(fd);
        struct stat st {};
        if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode) || older(st, e)) continue;
        auto v = std::make_shared<file_entry>();
        v->open_path = path;
        fill_file_entry(*v, std::move(file), st, {src.mime->lookup(e.open_path), c});
        if (v->kind != lookup_kind::file) continue;
        add_variant(e, c, std::move(v));
        e.sidecar_mask = static_cast<uint8_t>(e.sidecar_mask | coding_bit(c));
    }
}

// The bytes of `e`'s version for a compression job; false if they cannot be had.
bool fill_job(const file_entry& e, compress_job& job) {
    job.size = e.size;
    job.mtime_s = e.mtime_s;
    job.mtime_ns = e.mtime_ns;
    if (e.in_memory) {
        job.bytes = e.body;
        return true;
    }
    int fd = ::fcntl(e.fd.get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return false;
    job.fd.reset(fd);
    return true;
}

// The server's order of preference: the precompressed list, then compress's own order.
size_t preference(const encoding_settings& enc, coding (&out)[coding_count]) noexcept {
    size_t n = 0;
    unsigned seen = 0;
    for (const auto* list : {&enc.precompressed, &enc.compress})
        for (coding c : *list)
            if ((seen & coding_bit(c)) == 0 && n < coding_count) {
                seen |= coding_bit(c);
                out[n++] = c;
            }
    return n;
}

}  // namespace

representation_source make_representation_source(int root_fd, const encoding_settings& enc,
                                                 const compress_cache_settings& cache,
                                                 const mime_table& mime) {
    representation_source s;
    s.root_fd = root_fd;
    s.enc = &enc;
    s.cache = &cache;
    s.mime = &mime;
    struct stat st {};
    if (root_fd >= 0 && ::fstat(root_fd, &st) == 0)
        s.root_id = fmt::format("{:x}:{:x}", static_cast<uint64_t>(st.st_dev),
                                static_cast<uint64_t>(st.st_ino));
    return s;
}

bool attach_cached_copy(file_entry& e, coding c, const representation_source& src) noexcept {
    try {
        const std::string name = cache_file_name(src.root_id, e.open_path, e.etag, c);
        int fd =
            ::openat(src.cache->dir_fd.get(), name.c_str(), open_flags | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return false;
        unique_fd file(fd);
        struct stat st {};
        if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
        auto v = std::make_shared<file_entry>();
        v->open_path = name;  // for a log line about a failed send
        fill_file_entry(*v, std::move(file), st, {src.mime->lookup(e.open_path), c, &e});
        if (v->kind != lookup_kind::file) return false;
        add_variant(e, c, std::move(v));
        return true;
    } catch (...) {
        return false;
    }
}

void attach_representations(file_entry& e, const representation_source& src) noexcept {
    try {
        if (!src.enc->precompressed.empty()) attach_sidecars(e, src);
        // A sidecar wins over compression: the author made it, maybe with a better tool.
        const unsigned comp = src.enc->compress_mask() & ~e.variant_mask;
        if (comp == 0 || src.cache->dir_fd.get() < 0) return;
        if (e.size < compress_cache_settings::min_file_size || e.size > src.cache->max_file_size ||
            !compressible_type(src.mime->lookup(e.open_path)))
            return;
        e.compress_mask = static_cast<uint8_t>(comp);
        for (coding c : src.enc->compress)
            if ((comp & coding_bit(c)) != 0) attach_cached_copy(e, c, src);
    } catch (...) {
        // Out of memory: the file alone is still a right answer.
    }
}

bool representations_still_valid(const file_entry& e, const representation_source& src) noexcept {
    if (src.enc->precompressed.empty()) return true;
    try {
        std::string path;
        for (coding c : src.enc->precompressed) {
            path.assign(e.open_path).append(coding_suffix(c));
            struct stat st {};
            const bool usable = ::fstatat(src.root_fd, path.c_str(), &st, 0) == 0 &&
                                S_ISREG(st.st_mode) && !older(st, e);
            const bool had = (e.sidecar_mask & coding_bit(c)) != 0;
            if (usable != had) return false;
            if (had && !same_file(st, *e.variants[static_cast<size_t>(c)])) return false;
        }
        return true;
    } catch (...) {
        return false;
    }
}

const std::shared_ptr<file_entry>& choose_representation(exchange& x,
                                                         const std::shared_ptr<file_entry>& e) {
    const request_head& h = *x.head;
    if (!h.has_accept_encoding) return e;
    std::string_view value = h.accept_encoding;
    if (h.accept_encoding_repeated) {
        combine_field_lines(h.bytes, "accept-encoding", x.scratch);
        value = x.scratch;
    }
    const accept_encoding ae = parse_accept_encoding(value);
    const representation_source& src = x.svc.cache().source(x.site_index);
    coding order[coding_count];
    const size_t n = preference(*src.enc, order);
    file_entry& f = *e;

    const unsigned missing = f.compress_mask & ~f.variant_mask;
    if (missing != 0) {
        compressor& comp = x.svc.compressor();
        // A copy this worker asked for may be there now: one openat per finished job.
        if ((f.compress_asked & missing) != 0 && comp.completed() != f.compress_seen) {
            f.compress_seen = comp.completed();
            for (size_t i = 0; i < n; ++i)
                if ((f.compress_asked & missing & coding_bit(order[i])) != 0)
                    attach_cached_copy(f, order[i], src);
        }
        if (int err = comp.take_error(); err != 0 && x.svc.ctx().log().enabled(log_level::error))
            x.svc.ctx().log().error("http: compress_cache {}: {}", src.cache->path,
                                    std::strerror(err));
        const coding want = choose_coding(ae, true, f.variant_mask | f.compress_mask, order, n);
        const unsigned bit = coding_bit(want);
        if (want != coding::identity && (f.variant_mask & bit) == 0 &&
            (f.compress_asked & bit) == 0) {
            compress_job job;
            job.c = want;
            job.name = cache_file_name(src.root_id, f.open_path, f.etag, want);
            if (fill_job(f, job) && comp.submit(std::move(job))) {
                f.compress_asked = static_cast<uint8_t>(f.compress_asked | bit);
                f.compress_seen = comp.completed();
            }
        }
    }
    const coding c = choose_coding(ae, true, f.variant_mask, order, n);
    return c == coding::identity ? e : f.variants[static_cast<size_t>(c)];
}

}  // namespace preforkd::http
