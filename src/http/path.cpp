#include "http/path.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace preforkd::http {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

target_parts split_target(std::string_view target, target_form form) noexcept {
    if (form == target_form::absolute) {
        size_t scheme_end = target.find("://");
        target.remove_prefix(scheme_end == std::string_view::npos ? 0 : scheme_end + 3);
        size_t path_start = target.find_first_of("/?");
        target.remove_prefix(path_start == std::string_view::npos ? target.size() : path_start);
    } else if (form != target_form::origin) {
        return {};
    }
    target_parts parts;
    size_t q = target.find('?');
    parts.path = target.substr(0, q);
    if (q != std::string_view::npos) parts.query = target.substr(q + 1);
    if (parts.path.empty()) parts.path = "/";
    return parts;
}

path_result normalize_path(std::string_view raw, bool serve_hidden, std::string& out) {
    out.clear();
    if (raw.empty() || raw[0] != '/') return path_result::bad_request;
    // Segment by segment: decode into `out` after the last kept segment, then keep, drop
    // (".") or pop (".."). `out` holds "seg/seg/" while it grows.
    bool dir_form = false;
    size_t i = 1;
    while (i <= raw.size()) {
        const size_t seg_start = out.size();
        const size_t seg_end = std::min(raw.find('/', i), raw.size());
        while (i < seg_end) {
            // What comes before the next '%' is copied as one run (most segments: all of it).
            const size_t pct = std::min(raw.substr(i, seg_end - i).find('%'), seg_end - i);
            out.append(raw.data() + i, pct);
            i += pct;
            if (i == seg_end) break;
            if (i + 2 >= raw.size()) return path_result::bad_request;
            int hi = hex_value(raw[i + 1]);
            int lo = hex_value(raw[i + 2]);
            if (hi < 0 || lo < 0) return path_result::bad_request;
            const char c = static_cast<char>(hi * 16 + lo);
            // Decoded once: "%252e" stays "%2e". An encoded '/' would name a different
            // resource than its segments say, and NUL would cut a C path short.
            if (c == '/' || c == '\0') return path_result::bad_request;
            out.push_back(c);
            i += 3;
        }
        std::string_view seg(out.data() + seg_start, out.size() - seg_start);
        const bool last = i >= raw.size();
        if (seg.empty()) {
            dir_form = true;  // "//" collapses; a final empty segment is a trailing '/'
        } else if (seg == ".") {
            out.resize(seg_start);
            dir_form = true;
        } else if (seg == "..") {
            out.resize(seg_start);
            if (out.empty()) return path_result::bad_request;  // above the root
            out.pop_back();                                    // the '/' after the parent
            size_t parent = out.rfind('/');
            out.resize(parent == std::string::npos ? 0 : parent + 1);
            dir_form = true;
        } else {
            if (seg[0] == '.' && !serve_hidden) return path_result::hidden;
            out.push_back('/');
            dir_form = false;
        }
        ++i;  // past the '/'
        if (last) break;
    }
    // `out` ends with '/' after every kept segment: drop it unless the path names a folder.
    if (!out.empty() && !dir_form) out.pop_back();
    return path_result::ok;
}

int open_beneath(int root_fd, const std::string& rel, int flags, bool& use_openat2) noexcept {
    const char* path = rel.empty() ? "." : rel.c_str();
    if (use_openat2) {
        open_how how{};
        how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        for (;;) {
            long fd = ::syscall(SYS_openat2, root_fd, path, &how, sizeof how);
            if (fd >= 0) return static_cast<int>(fd);
            if (errno == EINTR) continue;
            // ENOSYS: kernel before 5.6; EPERM: a seccomp filter that does not know it.
            if (errno != ENOSYS && errno != EPERM) return -errno;
            if (errno == EPERM) {
                // EPERM is also a real answer (e.g. O_NOATIME); only give up on openat2
                // when the walk can open what openat2 could not.
                int walked = detail::open_beneath_walk(root_fd, rel, flags);
                if (walked >= 0) use_openat2 = false;
                return walked;
            }
            use_openat2 = false;
            break;
        }
    }
    return detail::open_beneath_walk(root_fd, rel, flags);
}

namespace detail {

int open_beneath_walk(int root_fd, const std::string& rel, int flags) noexcept {
    if (rel.empty()) {
        int fd = ::openat(root_fd, ".", flags | O_CLOEXEC);
        return fd >= 0 ? fd : -errno;
    }
    unique_fd dir;
    int at = root_fd;
    size_t start = 0;
    for (;;) {
        size_t slash = rel.find('/', start);
        std::string comp =
            rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (comp.empty() || comp == "." || comp == "..") {
            if (slash == std::string::npos) return -ENOENT;
            if (comp == "..") return -EXDEV;
            start = slash + 1;
            continue;
        }
        if (slash == std::string::npos || slash + 1 == rel.size()) {
            int o = flags | O_CLOEXEC | O_NOFOLLOW;
            if (slash != std::string::npos) o |= O_DIRECTORY;
            int fd = ::openat(at, comp.c_str(), o);
            return fd >= 0 ? fd : -errno;
        }
        int next = ::openat(at, comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) return -errno;
        dir.reset(next);
        at = next;
        start = slash + 1;
    }
}

}  // namespace detail

}  // namespace preforkd::http
