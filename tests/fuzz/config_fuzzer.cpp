// Feeds arbitrary bytes to the config loader, as a TOML file with an [http] application
// table, and to the two value parsers. Beyond "no crash, no UB", a config that loads must
// satisfy the bounds load_config promises, and every listen address must survive a round
// trip through its canonical spelling (reload relies on that to keep sockets open).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <preforkd/config.hpp>
#include <string>
#include <string_view>

namespace {

using namespace preforkd;
using namespace std::chrono_literals;

void check(bool ok) {
    if (!ok) std::abort();
}

const app_schema& http_schema() {
    static const app_schema schema = [] {
        app_schema s;
        s.tables = {"http"};
        s.arrays = {"site"};
        s.parse = [](app_tables& tables) -> result<std::shared_ptr<const void>> {
            table_reader& r = tables.table("http");
            auto root = std::make_shared<std::string>(r.path("root", "/var/www/html"));
            r.strings("index", {"index.html"});
            r.duration("keepalive_timeout", 5s);
            r.duration("header_timeout", 10s);
            r.integer("max_header_bytes", 8192, 1024, 1 << 20);
            r.integer("max_keepalive_requests", 1000, 0, std::numeric_limits<int64_t>::max());
            r.boolean("serve_hidden", false);
            r.string("status_path", "/server-status");
            r.strings("status_allow", {"127.0.0.1/32", "::1/128"});
            if (r.is_word("mode", "strict")) r.fail("mode", "is strict");
            // Nested readers, as the site rules use them (error_pages, headers, redirects).
            if (table_reader* pages = r.sub_table("error_pages"))
                for (const std::string& k : pages->keys()) pages->string(k, "");
            for (table_reader* item : r.table_array("headers")) {
                item->string("match", "");
                if (table_reader* set = item->sub_table("set"))
                    for (const std::string& k : set->keys()) set->string(k, "");
            }
            if (auto f = r.finish(); !f) return std::move(f).err();
            // [[site]] with nested tables: the readers of arrays, inline tables and keys().
            for (table_reader* site : tables.array("site")) {
                site->strings("names", {});
                site->path("root", *root);
                if (table_reader* pages = site->sub_table("error_pages"))
                    for (const std::string& k : pages->keys()) pages->path(k, "");
                for (table_reader* h : site->table_array("headers")) {
                    h->string("match", "");
                    if (table_reader* set = h->sub_table("set"))
                        for (const std::string& k : set->keys()) set->string(k, "");
                }
                if (auto f = site->finish(); !f) return std::move(f).err();
            }
            return std::shared_ptr<const void>(std::move(root));
        };
        return s;
    }();
    return schema;
}

// The entry as printed (address and flags, "unix:/x tls") parses back to the same entry;
// the address alone names the same socket. to_string() carries no flags, so comparing its
// parse with == would fail every flagged entry.
void check_address(const listen_address& a) {
    auto again = parse_listen_address(a.to_string() + a.flags_string());
    check(again.ok() && *again == a);
    auto bare = parse_listen_address(a.to_string());
    check(bare.ok() && same_socket(*bare, a) && !bare->tls && !bare->proxy);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    auto cfg = parse_config(text, "/etc/preforkd/fuzz.toml", http_schema());
    if (cfg) {
        const workers_config& w = cfg->workers;
        check(w.start >= 1 && w.start <= w.max && w.max <= max_workers_limit);
        check(w.min_spare >= 0 && w.min_spare <= w.max_spare);
        check(w.max_connections >= 1);
        check(w.graceful_timeout > 0ms && w.heartbeat_timeout >= 3s);
        check(w.rlimit_nofile == 0 ||
              (w.rlimit_nofile >= 16 + cfg->server.listen.size() && w.rlimit_nofile <= (1u << 20)));
        check(cfg->server.backlog >= 1 && cfg->server.backlog <= 65535);
        check(!cfg->server.listen.empty());
        for (const listen_address& a : cfg->server.listen) check_address(a);
        check(!cfg->server.pid_file.empty() && cfg->server.pid_file.front() == '/');
        check(cfg->log.error != "off" && !cfg->log.error.empty());
        check(cfg->app != nullptr);
    } else {
        // One line, always: main prints it as is.
        check(!cfg.err().message.empty());
        check(cfg.err().message.find('\n') == std::string::npos);
    }

    if (auto a = parse_listen_address(text)) check_address(*a);
    if (auto d = parse_duration(text)) check(d->count() >= 0);
    return 0;
}
