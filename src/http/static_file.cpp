#include "http/static_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "http/path.hpp"
#include "http/response.hpp"

namespace preforkd::http {

namespace {

// O_NONBLOCK: opening a FIFO that somebody left under the root must not hang the worker.
constexpr int open_flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;

lookup_kind kind_of_errno(int err) noexcept {
    switch (err) {
        case ENOENT:
        case ENOTDIR:
        case ELOOP:  // a symlink that openat2 or the walk refused
        case EXDEV:  // RESOLVE_BENEATH: the path would leave the root
        case ENAMETOOLONG:
            return lookup_kind::not_found;
        case EACCES:
        case EPERM:
            return lookup_kind::forbidden;
        default:
            return lookup_kind::error;
    }
}

}  // namespace

file_cache::file_cache(const http_settings& settings)
    : settings_(settings), oom_(std::make_shared<file_entry>()) {
    oom_->kind = lookup_kind::error;
    oom_->err = ENOMEM;
}

int file_cache::root_fd(uint32_t site) const noexcept {
    return site < settings_.sites.size() ? settings_.sites[site].root_fd : settings_.root_fd.get();
}

const std::vector<std::string>& file_cache::index(uint32_t site) const noexcept {
    return site < settings_.sites.size() ? settings_.sites[site].index : settings_.index;
}

const std::shared_ptr<file_entry>& file_cache::lookup(uint32_t site, std::string_view key,
                                                      int64_t now_s) noexcept {
    auto it = map_.find(cache_key_view{site, key});
    if (it != map_.end()) {
        file_entry& e = *it->second;
        if (e.checked_s == now_s) return it->second;
        if (e.kind == lookup_kind::file && still_valid(site, e)) {
            e.checked_s = now_s;
            return it->second;
        }
        if (e.in_memory) memory_ -= e.body.size();
        map_.erase(it);
    }
    scratch_ = resolve(site, key);
    scratch_->checked_s = now_s;
    if (scratch_->kind == lookup_kind::error) return scratch_;
    try {
        if (map_.size() >= max_entries || memory_ + scratch_->body.size() > max_memory) {
            // Simple and rare: a site with more hot paths than this pays a re-open, no more.
            map_.clear();
            memory_ = 0;
        }
        memory_ += scratch_->body.size();
        auto [pos, added] = map_.emplace(cache_key{site, std::string(key)}, scratch_);
        return pos->second;
    } catch (...) {
        return scratch_;  // out of memory: served uncached
    }
}

bool file_cache::still_valid(uint32_t site, const file_entry& e) const noexcept {
    // fstatat may follow a symlink out of the root: harmless, it only decides whether to
    // re-open, and re-opening goes through open_beneath.
    struct stat st {};
    if (::fstatat(root_fd(site), e.open_path.c_str(), &st, 0) != 0) return false;
    return S_ISREG(st.st_mode) && st.st_ino == e.ino && st.st_dev == e.dev &&
           static_cast<uint64_t>(st.st_size) == e.size && st.st_mtim.tv_sec == e.mtime_s &&
           st.st_mtim.tv_nsec == e.mtime_ns;
}

std::shared_ptr<file_entry> file_cache::resolve(uint32_t site, std::string_view key) noexcept {
    std::shared_ptr<file_entry> e;
    try {
        e = std::make_shared<file_entry>();
    } catch (...) {
        return oom_;  // made at start, so that running out of memory still has an answer
    }
    try {
        const bool dir_form = key.empty() || key.back() == '/';
        std::string rel(key);
        if (dir_form && !rel.empty()) rel.pop_back();

        int fd = open_beneath(root_fd(site), rel, open_flags, use_openat2_);
        if (fd < 0) {
            e->kind = kind_of_errno(-fd);
            e->err = -fd;
            return e;
        }
        unique_fd file(fd);
        struct stat st {};
        if (::fstat(file.get(), &st) != 0) {
            e->kind = lookup_kind::error;
            e->err = errno;
            return e;
        }
        if (S_ISREG(st.st_mode)) {
            if (dir_form) {
                e->kind = lookup_kind::not_found;  // "file.html/" names nothing
                return e;
            }
            e->open_path = std::move(rel);
            fill_file(*e, std::move(file), st);
            return e;
        }
        if (!S_ISDIR(st.st_mode)) {
            e->kind = lookup_kind::not_found;  // FIFOs, sockets, devices are never served
            return e;
        }
        if (!dir_form) {
            e->kind = lookup_kind::redirect;
            return e;
        }
        file.reset();
        for (const std::string& name : index(site)) {
            std::string path = rel.empty() ? name : rel + "/" + name;
            int ifd = open_beneath(root_fd(site), path, open_flags, use_openat2_);
            if (ifd < 0) {
                lookup_kind k = kind_of_errno(-ifd);
                if (k == lookup_kind::error) {
                    e->kind = k;
                    e->err = -ifd;
                    return e;
                }
                continue;
            }
            unique_fd index_fd(ifd);
            if (::fstat(index_fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            e->open_path = std::move(path);
            fill_file(*e, std::move(index_fd), st);
            return e;
        }
        // Like Apache and nginx without directory listings.
        e->kind = lookup_kind::forbidden;
        return e;
    } catch (...) {
        e->kind = lookup_kind::error;
        e->err = ENOMEM;
        return e;
    }
}

std::string_view ok_head(file_entry& e, const date_cache& dates) {
    if (e.ok_head.empty()) {
        std::string h;
        h.reserve(64 + dates.server_and_date().size() + e.length_line.size() + e.type_lines.size());
        head_writer w(h);
        w.status(200, dates);
        w.raw(e.length_line);
        w.raw(e.type_lines);
        const std::string_view sd = dates.server_and_date();
        e.ok_head_date_at = h.find(sd) + (sd.size() - http_date_length - 2);
        e.ok_head = std::move(h);
        e.ok_head_date = dates.now();
    } else if (e.ok_head_date != dates.now()) {
        std::memcpy(e.ok_head.data() + e.ok_head_date_at, dates.date().data(), http_date_length);
        e.ok_head_date = dates.now();
    }
    return e.ok_head;
}

void file_cache::fill_file(file_entry& e, unique_fd fd, const struct stat& st) noexcept {
    try {
        e.kind = lookup_kind::file;
        e.size = static_cast<uint64_t>(st.st_size);
        e.mtime_s = st.st_mtim.tv_sec;
        e.mtime_ns = st.st_mtim.tv_nsec;
        e.dev = st.st_dev;
        e.ino = st.st_ino;
        if (e.size <= memory_limit) {
            e.body.resize(e.size);
            size_t got = 0;
            while (got < e.size) {
                ssize_t n =
                    ::pread(fd.get(), e.body.data() + got, e.size - got, static_cast<off_t>(got));
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) break;
                got += static_cast<size_t>(n);
            }
            // Truncated while we read: serve what is there; the next second's check
            // sees the new size and reloads.
            e.body.resize(got);
            e.size = got;
            e.in_memory = true;
        } else {
            e.fd = std::move(fd);
        }
        e.etag = make_etag(e.mtime_s, e.mtime_ns, e.size);
        char date[http_date_length + 1];
        format_http_date(static_cast<time_t>(e.mtime_s), date);
        e.last_modified.assign(date, http_date_length);
        e.validator_lines =
            fmt::format("Last-Modified: {}\r\nETag: {}\r\n", e.last_modified, e.etag);
        e.type_lines = fmt::format("Content-Type: {}\r\n{}Accept-Ranges: bytes\r\n",
                                   settings_.mime.lookup(e.open_path), e.validator_lines);
        e.length_line = fmt::format("Content-Length: {}\r\n", e.size);
    } catch (...) {
        e.kind = lookup_kind::error;
        e.err = ENOMEM;
    }
}

}  // namespace preforkd::http
