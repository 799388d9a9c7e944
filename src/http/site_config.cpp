// [[site]] tables -> http_settings::sites: names, root, per-site defaults from [http], the
// site's own access log, and the checks -t and every reload make (`site[N].key` errors).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <preforkd/detail/text.hpp>
#include <preforkd/log.hpp>

#include "http/http_config.hpp"
#include "http/site.hpp"

namespace preforkd::http {

namespace {

using preforkd::detail::hex_escaped;

void check_index(table_reader& t, const std::vector<std::string>& index) {
    for (const std::string& name : index) {
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
            name.find('\0') != std::string::npos)
            t.fail("index",
                   fmt::format("\"{}\" must be a plain file name", hex_escaped(name, "\"")));
    }
}

// O_PATH | O_DIRECTORY, as for [http] root: the supervisor (still root) resolves the folder
// once and workers serve beneath it. A missing folder, or a file, fails the load.
void open_root(table_reader& t, site& s) {
    if (s.root.empty()) {
        t.fail("root", "must name a folder");
        return;
    }
    int fd = ::open(s.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        t.fail("root", fmt::format("{}: {}", hex_escaped(s.root),
                                   err == ENOTDIR ? "not a folder" : std::strerror(err)));
        return;
    }
    s.own_root.reset(fd);
    s.root_fd = fd;
}

}  // namespace

void parse_site_extras(table_reader& t, site& s, const http_settings& http) {
    s.rules = parse_site_rules(t, http.rules);
    s.encoding = parse_encoding_settings(t, http.encoding);
}

void parse_sites(const std::vector<table_reader*>& tables, http_settings& http) {
    if (tables.size() > max_sites) {
        tables[max_sites]->fail("", fmt::format("is one site too many (at most {})", max_sites));
        return;
    }
    // Which site claimed a canonical name first, for "claimed twice" errors.
    std::map<std::string, size_t, std::less<>> claimed;
    for (size_t i = 0; i < tables.size(); ++i) {
        table_reader& t = *tables[i];
        site s;
        const std::vector<std::string> names = t.strings("names", {});
        s.root = t.path("root", http.root);
        s.index = t.strings("index", http.index);
        s.serve_hidden = t.boolean("serve_hidden", http.serve_hidden);
        s.access_log = t.path("access_log", http.access_log);
        parse_site_extras(t, s, http);

        for (const std::string& written : names) {
            auto n = canonical_site_name(written);
            if (!n) {
                t.fail("names",
                       fmt::format("\"{}\" {}", hex_escaped(written, "\""), n.err().message));
                break;
            }
            auto [it, added] = claimed.emplace(*n, i);
            if (!added) {
                t.fail("names",
                       it->second == i
                           ? fmt::format("\"{}\" is listed twice", *n)
                           : fmt::format("\"{}\" is already a name of site[{}]", *n, it->second));
                break;
            }
            s.names.push_back(std::move(*n));
        }
        check_index(t, s.index);
        open_root(t, s);
        if (!s.access_log.empty()) {
            // Opened now, by the supervisor: a folder that does not exist or cannot be
            // written fails -t and the reload instead of every request's log line.
            auto fd = open_log_file(s.access_log);
            if (!fd)
                t.fail("access_log", fd.err().message);
            else
                s.access_fd = std::move(*fd);
        }
        http.sites.push_back(std::move(s));
    }
}

}  // namespace preforkd::http
