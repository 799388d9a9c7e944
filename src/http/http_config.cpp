#include "http/http_config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <preforkd/detail/text.hpp>
#include <preforkd/log.hpp>

namespace preforkd::http {

using namespace std::chrono_literals;

site site_from_http(const http_settings& http) {
    site s;
    s.root = http.root;
    s.root_fd = http.root_fd.get();
    s.index = http.index;
    s.serve_hidden = http.serve_hidden;
    s.access_log = http.access_log;
    s.rules = http.rules;
    s.encoding = http.encoding;
    return s;
}

result<std::shared_ptr<const http_settings>> parse_http_settings(table_reader& r,
                                                                 const char* mime_types) {
    return parse_http_settings(r, {}, mime_types);
}

result<std::shared_ptr<const http_settings>> parse_http_settings(
    table_reader& r, const std::vector<table_reader*>& site_tables, const char* mime_types) {
    auto s = std::make_shared<http_settings>();
    s->root = r.path("root", s->root);
    s->index = r.strings("index", s->index);
    s->keepalive_timeout = r.duration("keepalive_timeout", s->keepalive_timeout);
    s->header_timeout = r.duration("header_timeout", s->header_timeout);
    s->max_header_bytes =
        static_cast<uint32_t>(r.integer("max_header_bytes", s->max_header_bytes, 1024, 1 << 20));
    s->max_keepalive_requests = static_cast<uint64_t>(
        r.integer("max_keepalive_requests", static_cast<int64_t>(s->max_keepalive_requests), 0,
                  int64_t{1} << 40));
    s->serve_hidden = r.boolean("serve_hidden", s->serve_hidden);
    s->status_path = r.string("status_path", s->status_path);
    s->health_path = r.string("health_path", s->health_path);
    s->metrics_path = r.string("metrics_path", s->metrics_path);
    s->charset = r.string("charset", s->charset);
    s->encoding = parse_encoding_settings(r, s->encoding);
    parse_compress_cache_settings(r, !s->encoding.compress.empty(), s->compress_cache);
    std::vector<std::string> allow =
        r.strings("status_allow", std::vector<std::string>{"127.0.0.1/32", "::1/128"});
    s->rules = parse_site_rules(r, s->rules);
    s->access_log = r.path("access_log", s->access_log);

    for (const std::string& name : s->index) {
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
            name.find('\0') != std::string::npos)
            r.fail("index", fmt::format("\"{}\" must be a plain file name",
                                        preforkd::detail::hex_escaped(name, "\"")));
    }
    if (s->header_timeout <= 0ms) r.fail("header_timeout", "must be more than 0");
    if (!s->status_path.empty() &&
        (s->status_path[0] != '/' || s->status_path.find_first_of("?#% ") != std::string::npos))
        r.fail("status_path", "must be \"\" or a path starting with \"/\" (no query, no escapes)");
    for (const char* key : {"health_path", "metrics_path"}) {
        const std::string& v = key[0] == 'h' ? s->health_path : s->metrics_path;
        if (!v.empty() && (v[0] != '/' || v.find_first_of("?#% ") != std::string::npos ||
                           v.find("/.") != std::string::npos || v.find("//") != std::string::npos))
            r.fail(key, "must be \"\" or a plain path starting with \"/\" (no query, no escapes)");
    }
    // A token (RFC 9110 section 8.3.2): it goes into a header line as it is.
    if (s->charset.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789!#$%&'*+-.^_`|~") != std::string::npos)
        r.fail("charset", "must be \"\" or a charset name such as \"utf-8\"");
    for (const std::string& a : allow) {
        auto c = preforkd::detail::parse_cidr(a);
        if (!c) {
            r.fail("status_allow", c.err().message);
            break;
        }
        s->status_allow.push_back(*c);
    }
    if (!site_tables.empty()) {
        // The sites open their own roots ([http] root is only their default).
    } else if (s->root.empty()) {
        r.fail("root", "must name a folder");
    } else {
        // O_PATH: the supervisor, still root, resolves the folder once; workers that have
        // dropped privileges serve beneath it even if they could not traverse its parents.
        int fd = ::open(s->root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            r.fail("root", fmt::format("{}: {}", preforkd::detail::hex_escaped(s->root),
                                       std::strerror(err)));
        } else {
            s->root_fd.reset(fd);
        }
    }
    if (auto done = r.finish(); !done) return std::move(done).err();
    if (site_tables.empty()) {
        site one = site_from_http(*s);
        if (!one.access_log.empty()) {
            auto fd = open_log_file(one.access_log);
            if (!fd) {
                r.fail("access_log", fd.err().message);
                auto failed = r.finish();
                return std::move(failed).err();
            }
            one.access_fd = std::move(*fd);
        }
        s->sites.push_back(std::move(one));
    } else {
        parse_sites(site_tables, *s);
        for (table_reader* t : site_tables)
            if (auto done = t->finish(); !done) return std::move(done).err();
        s->sites_configured = true;
        s->site_requests = std::make_shared<const site_counters>(s->sites.size());
        // One cache folder for the server, needed as soon as any site compresses.
        bool compresses = false;
        for (const site& one : s->sites) compresses |= !one.encoding.compress.empty();
        if (compresses && !s->compress_cache.dir_fd) {
            open_compress_cache(r, s->compress_cache);
            if (auto done = r.finish(); !done) return std::move(done).err();
        }
    }
    s->finder = site_finder(s->sites);
    s->mime = mime_table::load(mime_types);
    s->mime.set_charset(s->charset);
    return std::shared_ptr<const http_settings>(std::move(s));
}

}  // namespace preforkd::http
