// autoindex: an HTML listing of a folder that has no index file.
//
// Built on each request, never cached: a listing must show the folder as it is now, and
// folders listed are rare next to files served. A folder is read whole, at most
// max_listing_entries entries, within one turn of the worker's loop.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <preforkd/detail/text.hpp>
#include <string>
#include <vector>

#include "http/http_service.hpp"
#include "http/response.hpp"
#include "http/site_answers.hpp"
#include "http/site_rules.hpp"

namespace preforkd::http {

namespace {

struct listing_entry {
    std::string name;
    bool folder = false;
    bool link = false;
    uint64_t size = 0;
    time_t mtime = 0;
};

using preforkd::detail::append_html_escaped;

// An href relative to the folder: everything but RFC 3986 unreserved bytes encoded, so a
// name like "a:b" or "?x" stays a name (not a scheme, not a query).
void append_href(std::string& out, std::string_view name) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : name) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(ch);
        } else {
            const char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            out.append(esc, 3);
        }
    }
}

// False when the folder cannot be read; `truncated` when it held more than the cap.
bool read_folder(int root_fd, std::string_view path, bool use_openat2, bool serve_hidden,
                 std::vector<listing_entry>& out, bool& truncated) {
    std::string rel(path);
    if (!rel.empty() && rel.back() == '/') rel.pop_back();
    int fd = open_beneath(root_fd, rel, O_RDONLY | O_DIRECTORY | O_NONBLOCK, use_openat2);
    if (fd < 0) return false;
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        ::close(fd);
        return false;
    }
    while (const dirent* d = ::readdir(dir)) {
        std::string_view name(d->d_name);
        if (name == "." || name == "..") continue;
        if (name[0] == '.' && !serve_hidden) continue;  // as the file handler hides them
        // Not followed: a link's target may lie outside the root, and its size and date
        // are none of the listing's business. The file handler decides when it is asked.
        struct stat st {};
        if (::fstatat(::dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        listing_entry e;
        if (S_ISDIR(st.st_mode)) {
            e.folder = true;
        } else if (S_ISLNK(st.st_mode)) {
            e.link = true;
        } else if (!S_ISREG(st.st_mode)) {
            continue;  // FIFOs, sockets, devices are never served: not listed either
        }
        if (out.size() == max_listing_entries) {
            truncated = true;
            break;
        }
        e.name.assign(name);
        e.size = static_cast<uint64_t>(st.st_size);
        e.mtime = st.st_mtim.tv_sec;
        out.push_back(std::move(e));
    }
    ::closedir(dir);
    // Folders first, then by name, byte by byte: the same order for every client.
    std::sort(out.begin(), out.end(), [](const listing_entry& a, const listing_entry& b) {
        return a.folder != b.folder ? a.folder : a.name < b.name;
    });
    return true;
}

void append_row(std::string& body, std::string_view name, bool folder, std::string_view size,
                time_t mtime) {
    body.append("<tr><td><a href=\"");
    append_href(body, name);
    if (folder) body.push_back('/');
    body.append("\">");
    append_html_escaped(body, name);
    if (folder) body.push_back('/');
    body.append("</a></td><td>");
    body.append(size);
    body.append("</td><td>");
    if (mtime != 0) {
        tm g{};
        ::gmtime_r(&mtime, &g);
        char date[32];
        size_t n = std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &g);
        body.append(date, n);
    }
    body.append("</td></tr>\n");
}

}  // namespace

bool answer_listing(exchange& x) {
    std::vector<listing_entry> entries;
    bool truncated = false;
    if (!read_folder(x.root_fd, x.path, x.svc.cache().uses_openat2(),
                     x.svc.serve_hidden(x.site_index), entries, truncated))
        return false;

    std::string title = "Index of /";
    title.append(x.path);
    std::string body;
    body.reserve(512 + entries.size() * 128);
    body.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    append_html_escaped(body, title);
    body.append("</title></head>\n<body><h1>");
    append_html_escaped(body, title);
    body.append("</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n");
    if (!x.path.empty()) append_row(body, "..", true, "-", 0);
    for (const listing_entry& e : entries)
        append_row(body, e.name, e.folder, e.folder || e.link ? "-" : std::to_string(e.size),
                   e.mtime);
    body.append("</table>\n");
    if (truncated)
        body.append("<p>Only the first " + std::to_string(max_listing_entries) +
                    " entries are listed.</p>\n");
    body.append("</body></html>\n");

    date_cache& dates = x.svc.dates();
    const size_t head_start = x.out.size();
    head_writer w(x.out);
    w.status(200, dates);
    w.raw("Content-Type: text/html; charset=utf-8\r\n");
    w.header("Content-Length", body.size());
    append_rule_headers(x);
    w.end(x.keep, x.minor);
    x.head_bytes = x.out.size() - head_start;
    x.status = 200;
    x.body_bytes = x.head_only ? 0 : body.size();
    if (!x.head_only) x.out.append(body);
    return true;
}

}  // namespace preforkd::http
