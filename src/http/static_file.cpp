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
    // One source per site: its root, its codings; the compressed copies' folder is shared.
    if (settings.sites.empty()) {
        srcs_.push_back(make_representation_source(settings.root_fd.get(), settings.encoding,
                                                   settings.compress_cache, settings.mime));
    }
    for (const site& one : settings.sites)
        srcs_.push_back(make_representation_source(one.root_fd, one.encoding,
                                                   settings.compress_cache, settings.mime));
    oom_->kind = lookup_kind::error;
    oom_->err = ENOMEM;
}

size_t file_cache::entry_memory(const file_entry& e) noexcept {
    size_t n = e.body.size();
    for (const auto& v : e.variants)
        if (v) n += v->body.size();
    return n;
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
        if (e.kind == lookup_kind::file && still_valid(site, e) &&
            representations_still_valid(e, source(site))) {
            e.checked_s = now_s;
            return it->second;
        }
        memory_ -= e.counted_memory;
        map_.erase(it);
    }
    scratch_ = resolve(site, key);
    scratch_->checked_s = now_s;
    if (scratch_->kind == lookup_kind::error) return scratch_;
    try {
        const size_t bytes = entry_memory(*scratch_);
        if (map_.size() >= max_entries || memory_ + bytes > max_memory) {
            // Simple and rare: a site with more hot paths than this pays a re-open, no more.
            map_.clear();
            memory_ = 0;
        }
        memory_ += bytes;
        scratch_->counted_memory = bytes;
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
            fill_file(site, *e, std::move(file), st);
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
        bool index_refused = false;
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
                index_refused = index_refused || k == lookup_kind::forbidden;
                continue;
            }
            unique_fd index_fd(ifd);
            if (::fstat(index_fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            e->open_path = std::move(path);
            fill_file(site, *e, std::move(index_fd), st);
            return e;
        }
        // Like Apache and nginx without directory listings. An index file that exists but
        // may not be read keeps the folder unlisted too.
        e->kind = lookup_kind::forbidden;
        e->folder = !index_refused;
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

void file_cache::fill_file(uint32_t site, file_entry& e, unique_fd fd,
                           const struct stat& st) noexcept {
    fill_file_entry(e, std::move(fd), st, {settings_.mime.lookup(e.open_path)});
    if (e.kind != lookup_kind::file) return;
    attach_representations(e, source(site));
    if (e.variant_mask != 0 || e.compress_mask != 0) mark_vary(e);
}

namespace {

// "\"...\"" -> "\"...-br\"": each coding's representation gets its own strong validator.
std::string with_suffix(std::string_view etag, coding c) {
    std::string out(etag.substr(0, etag.size() - 1));
    out.push_back('-');
    out.append(coding_name(c));
    out.push_back('"');
    return out;
}

constexpr std::string_view vary_line = "Vary: Accept-Encoding\r\n";
constexpr std::string_view ranges_line = "Accept-Ranges: bytes\r\n";

}  // namespace

void mark_vary(file_entry& e) noexcept {
    if (e.vary) return;
    try {
        e.type_lines.insert(e.type_lines.size() - ranges_line.size(), vary_line);
        e.validator_lines.append(vary_line);
        e.ok_head.clear();
        e.vary = true;
    } catch (...) {
        e.kind = lookup_kind::error;
        e.err = ENOMEM;
    }
}

void fill_file_entry(file_entry& e, unique_fd fd, const struct stat& st,
                     const entry_labels& labels) noexcept {
    try {
        e.kind = lookup_kind::file;
        e.size = static_cast<uint64_t>(st.st_size);
        e.mtime_s = st.st_mtim.tv_sec;
        e.mtime_ns = st.st_mtim.tv_nsec;
        e.dev = st.st_dev;
        e.ino = st.st_ino;
        if (e.size <= file_cache::memory_limit) {
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
        const bool encoded = labels.encoding != coding::identity;
        const file_entry* origin = labels.version_of;
        if (origin != nullptr) {
            // A cached copy is a function of the original's version: its validators.
            e.mtime_s = origin->mtime_s;
            e.mtime_ns = origin->mtime_ns;
            e.etag = with_suffix(origin->etag, labels.encoding);
        } else {
            e.etag = make_etag(e.mtime_s, e.mtime_ns, e.size);
            if (encoded) e.etag = with_suffix(e.etag, labels.encoding);
        }
        char date[http_date_length + 1];
        format_http_date(static_cast<time_t>(e.mtime_s), date);
        e.last_modified.assign(date, http_date_length);
        e.vary = encoded;
        e.validator_lines = fmt::format("Last-Modified: {}\r\nETag: {}\r\n{}", e.last_modified,
                                        e.etag, encoded ? vary_line : "");
        if (encoded)
            e.type_lines =
                fmt::format("Content-Type: {}\r\nContent-Encoding: {}\r\n{}{}", labels.content_type,
                            coding_name(labels.encoding), e.validator_lines, ranges_line);
        else
            e.type_lines = fmt::format("Content-Type: {}\r\n{}{}", labels.content_type,
                                       e.validator_lines, ranges_line);
        e.length_line = fmt::format("Content-Length: {}\r\n", e.size);
    } catch (...) {
        e.kind = lookup_kind::error;
        e.err = ENOMEM;
    }
}

}  // namespace preforkd::http
