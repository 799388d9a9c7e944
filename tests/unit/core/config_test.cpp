// load_config / parse_config: defaults, every key, every class of error with its file:line.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <preforkd/config.hpp>
#include <string>

#include "core/config_lines.hpp"
#include "core/pid_file_setting.hpp"
#include "sys/privileges.hpp"
#include "tls/tls_settings.hpp"

namespace preforkd {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

result<config> parse(std::string_view text, const app_schema& schema = {}) {
    return parse_config(text, "/srv/site/x.toml", schema);
}

// The one-line error of an invalid config ("" and a test failure if it loaded).
std::string error_of(std::string_view text, const app_schema& schema = {}) {
    auto r = parse(text, schema);
    EXPECT_FALSE(r.ok()) << "loaded:\n" << text;
    return r ? std::string() : r.err().message;
}

config ok(std::string_view text, const app_schema& schema = {}) {
    auto r = parse(text, schema);
    EXPECT_TRUE(r.ok()) << r.err().message;
    return r ? std::move(r).value() : config{};
}

// What the built-in HTTP application reads from [http], enough to load the shipped files.
struct http_settings {
    std::string root;
    std::vector<std::string> index;
    milliseconds keepalive_timeout{};
    int64_t max_header_bytes = 0;
    bool serve_hidden = false;
    std::vector<std::string> status_allow;
    int site_rule_count = 0;  // error pages, rules and switches set: 0 by default
    std::vector<std::string> precompressed;
    std::vector<std::string> compress;
    std::string compress_cache;
    std::string compress_cache_max;
    std::string compress_max_size;
};

app_schema http_schema() {
    app_schema s;
    s.tables = {"http"};
    s.parse = [](app_tables& tables) -> result<std::shared_ptr<const void>> {
        table_reader& r = tables.table("http");
        auto h = std::make_shared<http_settings>();
        h->root = r.path("root", "/var/www/html");
        h->index = r.strings("index", {"index.html"});
        h->keepalive_timeout = r.duration("keepalive_timeout", 5s);
        r.duration("header_timeout", 10s);
        h->max_header_bytes = r.integer("max_header_bytes", 8192, 1024, 1 << 20);
        r.integer("max_keepalive_requests", 1000, 0, std::numeric_limits<int64_t>::max());
        h->serve_hidden = r.boolean("serve_hidden", false);
        r.string("status_path", "/server-status");
        r.string("health_path", "/healthz");
        r.string("metrics_path", "/metrics");
        r.string("charset", "utf-8");
        r.path("access_log", "");
        h->status_allow = r.strings("status_allow", {"127.0.0.1/32", "::1/128"});
        // The site rules (src/http/site_rules.cpp), read as far as their shape.
        if (table_reader* pages = r.sub_table("error_pages"))
            for (const std::string& k : pages->keys())
                h->site_rule_count += !pages->string(k, "").empty();
        h->site_rule_count += !r.string("fallback", "").empty();
        h->site_rule_count += r.boolean("autoindex", false);
        for (table_reader* item : r.table_array("headers")) {
            item->string("match", "");
            if (table_reader* set = item->sub_table("set"))
                for (const std::string& k : set->keys()) set->string(k, "");
            ++h->site_rule_count;
        }
        for (table_reader* item : r.table_array("redirects")) {
            item->string("match", "");
            item->string("to", "");
            item->integer("status", 308, 301, 308);
            ++h->site_rule_count;
        }
        h->site_rule_count += r.boolean("https_redirect", false);
        h->precompressed = r.strings("precompressed", {"br", "zstd", "gzip"});
        h->compress = r.strings("compress", {});
        h->compress_cache = r.path("compress_cache", "/var/cache/preforkd");
        h->compress_cache_max = r.string("compress_cache_max", "256MiB");
        h->compress_max_size = r.string("compress_max_size", "8MiB");
        if (auto f = r.finish(); !f) return std::move(f).err();
        return std::shared_ptr<const void>(std::move(h));
    };
    return s;
}

// An app schema whose parse runs `body` on the [http] reader and returns its finish().
app_schema app_with(std::function<void(table_reader&)> body, bool call_finish = true) {
    app_schema s;
    s.tables = {"http"};
    s.parse = [body = std::move(body),
               call_finish](app_tables& tables) -> result<std::shared_ptr<const void>> {
        table_reader& r = tables.table("http");
        body(r);
        if (call_finish) {
            if (auto f = r.finish(); !f) return std::move(f).err();
        }
        return std::shared_ptr<const void>();
    };
    return s;
}

int usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    EXPECT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

// ---- defaults and values ------------------------------------------------------------------

TEST(config, empty_file_gives_every_default) {
    config c = ok("");
    EXPECT_EQ(c.path, fs::path("/srv/site/x.toml"));
    ASSERT_EQ(c.server.listen.size(), 1u);
    EXPECT_EQ(c.server.listen[0].to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.server.backlog, 511);
    EXPECT_EQ(c.server.user, "");
    EXPECT_EQ(c.server.group, "");
    EXPECT_EQ(c.server.pid_file, "/run/preforkd/preforkd.pid");
    EXPECT_EQ(c.workers.start, 4);
    EXPECT_FALSE(c.workers.start_auto);
    EXPECT_EQ(c.workers.min_spare, 1);
    EXPECT_EQ(c.workers.max_spare, 8);
    EXPECT_EQ(c.workers.max, 64);
    EXPECT_EQ(c.workers.max_connections, 512);
    EXPECT_EQ(c.workers.max_requests, 0u);
    EXPECT_EQ(c.workers.graceful_timeout, 30s);
    EXPECT_EQ(c.workers.heartbeat_timeout, 30s);
    EXPECT_EQ(c.workers.rlimit_nofile, 0u);
    EXPECT_EQ(c.log.error, "/var/log/preforkd/error.log");
    EXPECT_EQ(c.log.access, "/var/log/preforkd/access.log");
    EXPECT_EQ(c.log.level, log_level::info);
    EXPECT_EQ(c.app, nullptr);
}

TEST(config, empty_tables_give_every_default) {
    config c = ok("[server]\n[workers]\n[log]\n");
    EXPECT_EQ(c.server.listen[0].to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.workers.max, 64);
    EXPECT_EQ(c.log.level, log_level::info);
}

TEST(config, every_core_key_is_read) {
    config c = ok(R"(
[server]
listen = ["*:80", "[::]:80", "unix:/run/p.sock"]
backlog = 1024
user = "www-data"
group = "www"
pid_file = "/run/p.pid"

[workers]
start = 3
min_spare = 2
max_spare = 5
max = 10
max_connections = 1
max_requests = 10000
graceful_timeout = "2m"
heartbeat_timeout = 7
rlimit_nofile = 65536

[log]
error = "/var/log/p/e.log"
access = "off"
level = "debug"
)");
    ASSERT_EQ(c.server.listen.size(), 3u);
    EXPECT_EQ(c.server.listen[0].to_string(), "0.0.0.0:80");
    EXPECT_EQ(c.server.listen[1].to_string(), "[::]:80");
    EXPECT_EQ(c.server.listen[2].to_string(), "unix:/run/p.sock");
    EXPECT_EQ(c.server.backlog, 1024);
    EXPECT_EQ(c.server.user, "www-data");
    EXPECT_EQ(c.server.group, "www");
    EXPECT_EQ(c.server.pid_file, "/run/p.pid");
    EXPECT_EQ(c.workers.start, 3);
    EXPECT_FALSE(c.workers.start_auto);
    EXPECT_EQ(c.workers.min_spare, 2);
    EXPECT_EQ(c.workers.max_spare, 5);
    EXPECT_EQ(c.workers.max, 10);
    EXPECT_EQ(c.workers.max_connections, 1);
    EXPECT_EQ(c.workers.max_requests, 10000u);
    EXPECT_EQ(c.workers.graceful_timeout, 2min);
    EXPECT_EQ(c.workers.heartbeat_timeout, 7s);
    EXPECT_EQ(c.workers.rlimit_nofile, 65536u);
    EXPECT_EQ(c.log.error, "/var/log/p/e.log");
    EXPECT_EQ(c.log.access, "off");
    EXPECT_EQ(c.log.level, log_level::debug);
}

TEST(config, every_log_level_is_known) {
    EXPECT_EQ(ok("[log]\nlevel = \"info\"").log.level, log_level::info);
    EXPECT_EQ(ok("[log]\nlevel = \"warn\"").log.level, log_level::warn);
    EXPECT_EQ(ok("[log]\nlevel = \"error\"").log.level, log_level::error);
    EXPECT_EQ(ok("[log]\nlevel = \"crit\"").log.level, log_level::crit);
}

// Issue 16 item 6: log.access_format.
TEST(config, access_format_is_one_of_three_words) {
    EXPECT_EQ(ok("").log.access_format, access_log_format::combined);
    EXPECT_EQ(ok("[log]\naccess_format = \"combined\"").log.access_format,
              access_log_format::combined);
    EXPECT_EQ(ok("[log]\naccess_format = \"vhost_combined\"").log.access_format,
              access_log_format::vhost_combined);
    EXPECT_EQ(ok("[log]\naccess_format = \"json\"").log.access_format, access_log_format::json);
    EXPECT_EQ(error_of("[log]\nlevel = \"info\"\naccess_format = \"JSON\"\n"),
              "/srv/site/x.toml:3: log.access_format \"JSON\" is not one of combined, "
              "vhost_combined, json");
    EXPECT_NE(error_of("[log]\naccess_format = 1\n").find("/srv/site/x.toml:2: log.access_format"),
              std::string::npos);
}

TEST(config, logs_can_go_to_stderr) {
    config c = ok("[log]\nerror = \"stderr\"\naccess = \"stderr\"\n");
    EXPECT_EQ(c.log.error, "stderr");
    EXPECT_EQ(c.log.access, "stderr");
}

TEST(config, durations_accept_seconds_and_units) {
    config c = ok("[workers]\ngraceful_timeout = 10\nheartbeat_timeout = \"3500ms\"");
    EXPECT_EQ(c.workers.graceful_timeout, 10s);
    EXPECT_EQ(c.workers.heartbeat_timeout, 3500ms);
    EXPECT_EQ(ok("[workers]\ngraceful_timeout = \"1h\"").workers.graceful_timeout, 1h);
}

TEST(config, inline_tables_work_like_headers) {
    config c = ok("workers = { max = 3, start = 2, max_spare = 2 }\n");
    EXPECT_EQ(c.workers.max, 3);
}

// ---- "auto" --------------------------------------------------------------------------------

TEST(config, auto_start_is_one_worker_per_usable_cpu) {
    config c = ok("[workers]\nstart = \"auto\"\nmax = 4096\n");
    EXPECT_TRUE(c.workers.start_auto);
    EXPECT_EQ(c.workers.start, usable_cpus());
}

TEST(config, auto_start_is_capped_by_max) {
    config c = ok("[workers]\nstart = \"auto\"\nmax = 1\n");
    EXPECT_TRUE(c.workers.start_auto);
    EXPECT_EQ(c.workers.start, 1);
}

TEST(config, start_rejects_other_words) {
    EXPECT_EQ(error_of("[workers]\nstart = \"many\"\n"),
              R"(/srv/site/x.toml:2: workers.start must be an integer or "auto", not "many")");
}

// ---- relative paths ------------------------------------------------------------------------

TEST(config, relative_paths_resolve_against_the_config_folder) {
    config c = ok(R"(
[server]
pid_file = "run/p.pid"
[log]
error = "../logs/./e.log"
access = "a.log"
)");
    EXPECT_EQ(c.server.pid_file, "/srv/site/run/p.pid");
    EXPECT_EQ(c.log.error, "/srv/logs/e.log");
    EXPECT_EQ(c.log.access, "/srv/site/a.log");
}

TEST(config, relative_file_name_gives_absolute_path_and_folder) {
    auto r = parse_config("[server]\npid_file = \"p.pid\"\n", "conf/x.toml");
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->path, fs::current_path() / "conf/x.toml");
    EXPECT_EQ(r->server.pid_file, (fs::current_path() / "conf/p.pid").string());
}

TEST(config, app_path_resolves_relative_and_keeps_fallback) {
    std::string root, fallback, empty;
    auto schema = app_with([&](table_reader& r) {
        root = r.path("root", "x");
        fallback = r.path("absent", "relative/fallback");
        empty = r.path("empty", "y");
    });
    ok("[http]\nroot = \"www\"\nempty = \"\"\n", schema);
    EXPECT_EQ(root, "/srv/site/www");
    EXPECT_EQ(fallback, "relative/fallback");
    EXPECT_EQ(empty, "");
}

// ---- structure errors ----------------------------------------------------------------------

TEST(config, unknown_key_names_table_key_and_line) {
    EXPECT_EQ(error_of("[workers]\nstart = 2\nmaxx = 3\n"),
              "/srv/site/x.toml:3: unknown key workers.maxx");
}

TEST(config, unknown_key_nearest_the_top_is_reported) {
    // "aaa" sorts first but "zzz" comes first in the file.
    EXPECT_EQ(error_of("[server]\nzzz = 1\nbacklog = 5\naaa = 2\n"),
              "/srv/site/x.toml:2: unknown key server.zzz");
}

TEST(config, unknown_subtable_of_a_core_table_is_an_unknown_key) {
    EXPECT_EQ(error_of("[server]\nbacklog = 5\n\n[server.tls]\ncert = \"x\"\n"),
              "/srv/site/x.toml:4: unknown key server.tls");
}

TEST(config, unknown_table) {
    EXPECT_EQ(error_of("[server]\n\n[servr]\nbacklog = 5\n"),
              "/srv/site/x.toml:3: unknown table servr");
}

TEST(config, application_table_without_application_is_unknown) {
    EXPECT_EQ(error_of("[http]\nroot = \"/x\"\n"), "/srv/site/x.toml:1: unknown table http");
}

TEST(config, top_level_key_is_an_error) {
    EXPECT_EQ(error_of("listen = [\"*:80\"]\n[server]\n"),
              "/srv/site/x.toml:1: unknown key listen outside any table");
}

TEST(config, core_table_must_be_a_table) {
    EXPECT_EQ(error_of("\nworkers = 3\n"),
              "/srv/site/x.toml:2: workers must be a table, not an integer");
    EXPECT_EQ(error_of("[[server]]\nbacklog = 1\n"),
              "/srv/site/x.toml:1: server must be a table, not an array");
}

TEST(config, parse_error_gives_its_line) {
    std::string e = error_of("[server]\nbacklog = 5\nuser = \n");
    EXPECT_EQ(e.rfind("/srv/site/x.toml:3: ", 0), 0u) << e;
    EXPECT_GT(e.size(), std::string("/srv/site/x.toml:3: ").size());
    EXPECT_EQ(e.find('\n'), std::string::npos);
}

TEST(config, duplicate_key_is_a_parse_error) {
    std::string e = error_of("[workers]\nmax = 2\nmax = 3\n");
    EXPECT_EQ(e.rfind("/srv/site/x.toml:3: ", 0), 0u) << e;
}

// ---- type errors ---------------------------------------------------------------------------

TEST(config, wrong_type_names_both_types) {
    EXPECT_EQ(error_of("[workers]\n\n\nmax = \"8\"\n"),
              "/srv/site/x.toml:4: workers.max must be an integer, not a string");
    EXPECT_EQ(error_of("[server]\nuser = 0\n"),
              "/srv/site/x.toml:2: server.user must be a string, not an integer");
    EXPECT_EQ(error_of("[server]\nbacklog = 1.5\n"),
              "/srv/site/x.toml:2: server.backlog must be an integer, not a float");
    EXPECT_EQ(error_of("[log]\nerror = true\n"),
              "/srv/site/x.toml:2: log.error must be a string, not a boolean");
}

TEST(config, listen_must_be_an_array_of_strings) {
    EXPECT_EQ(error_of("[server]\nlisten = \"*:80\"\n"),
              "/srv/site/x.toml:2: server.listen must be an array of strings, not a string");
    EXPECT_EQ(
        error_of("[server]\nlisten = [\"*:80\", 81]\n"),
        "/srv/site/x.toml:2: server.listen must be an array of strings (item 2 is an integer)");
}

TEST(config, first_problem_wins) {
    EXPECT_EQ(error_of("[server]\nbacklog = \"x\"\nuser = 5\nbogus = 1\n"),
              "/srv/site/x.toml:2: server.backlog must be an integer, not a string");
}

// ---- durations -----------------------------------------------------------------------------

TEST(config, bad_duration) {
    EXPECT_EQ(error_of("[workers]\ngraceful_timeout = \"5x\"\n"),
              R"(/srv/site/x.toml:2: workers.graceful_timeout "5x" is not a duration )"
              R"((e.g. "250ms", "5s", "2m", "1h" or "30"))");
    EXPECT_EQ(error_of("[workers]\ngraceful_timeout = -1\n"),
              "/srv/site/x.toml:2: workers.graceful_timeout (-1) must be >= 0");
    EXPECT_EQ(error_of("[workers]\ngraceful_timeout = 31536001\n"),
              "/srv/site/x.toml:2: workers.graceful_timeout (31536001) is too large "
              "(at most 8760h, one year)");
    EXPECT_EQ(error_of("[workers]\ngraceful_timeout = 1.5\n"),
              "/srv/site/x.toml:2: workers.graceful_timeout must be a duration (seconds, or a "
              R"(string like "250ms", "5s", "2m"), not a float)");
}

TEST(config, graceful_timeout_must_be_positive) {
    EXPECT_EQ(error_of("[workers]\ngraceful_timeout = \"0ms\"\n"),
              "/srv/site/x.toml:2: workers.graceful_timeout (0s) must be > 0");
}

TEST(config, heartbeat_timeout_is_at_least_three_beats) {
    EXPECT_EQ(error_of("[workers]\nheartbeat_timeout = \"2999ms\"\n"),
              "/srv/site/x.toml:2: workers.heartbeat_timeout (2999ms) must be at least 3s "
              "(workers beat once a second; three beats)");
    EXPECT_EQ(error_of("[workers]\nheartbeat_timeout = 1\n"),
              "/srv/site/x.toml:2: workers.heartbeat_timeout (1s) must be at least 3s "
              "(workers beat once a second; three beats)");
    EXPECT_EQ(ok("[workers]\nheartbeat_timeout = \"3s\"\n").workers.heartbeat_timeout, 3s);
}

// ---- listen --------------------------------------------------------------------------------

TEST(config, bad_listen_address) {
    EXPECT_EQ(error_of("[server]\nlisten = [\"127.0.0.1:8080\",\n  \"example.com:80\"]\n"),
              R"(/srv/site/x.toml:2: server.listen "example.com:80" names a host; use a numeric )"
              "address, localhost or * (names are not resolved)");
}

TEST(config, listen_must_not_be_empty) {
    EXPECT_EQ(error_of("[server]\nlisten = []\n"),
              "/srv/site/x.toml:2: server.listen must list at least one address");
}

TEST(config, listen_flags_are_read) {
    config c =
        ok("[server]\nlisten = [\"127.0.0.1:8080\", \"127.0.0.1:8443 tls\",\n"
           "  \"[::1]:8080 proxy\"]\n"
           "[tls]\ncertificates = [{ cert = \"a.pem\", key = \"a.key\" }]\n");
    ASSERT_EQ(c.server.listen.size(), 3u);
    EXPECT_FALSE(c.server.listen[0].tls);
    EXPECT_TRUE(c.server.listen[1].tls);
    EXPECT_FALSE(c.server.listen[1].proxy);
    EXPECT_FALSE(c.server.listen[2].tls);
    EXPECT_TRUE(c.server.listen[2].proxy);
}

TEST(config, unknown_listen_flag_names_its_entry_and_line) {
    EXPECT_EQ(error_of("[server]\nlisten = [\"127.0.0.1:8080\",\n  \"*:443 tls prxy\"]\n"),
              R"(/srv/site/x.toml:3: server.listen[1] "*:443 tls prxy" has an unknown flag )"
              R"("prxy" (flags: tls, proxy))");
}

TEST(config, one_address_with_different_flags_is_still_a_duplicate) {
    EXPECT_EQ(error_of("[server]\nlisten = [\"127.0.0.1:80\", \"127.0.0.1:80 tls\"]\n"),
              "/srv/site/x.toml:2: server.listen lists 127.0.0.1:80 twice");
}

TEST(config, a_tls_listener_needs_certificates) {
    EXPECT_EQ(error_of("[server]\nlisten = [\"127.0.0.1:8080\",\n  \"127.0.0.1:8443 tls\"]\n"),
              R"(/srv/site/x.toml:3: server.listen[1] "127.0.0.1:8443 tls" is a tls listener, )"
              R"(but [tls] lists no certificates)");
}

// The worker chains the stages: the PROXY header, then the TLS handshake.
TEST(config, tls_and_proxy_on_one_listener_are_accepted) {
    config c =
        ok("[server]\nlisten = [\"127.0.0.1:8443 tls proxy\"]\n[tls]\n"
           "certificates = [{ cert = \"a.pem\", key = \"/k/a.key\" }]\n");
    ASSERT_EQ(c.server.listen.size(), 1u);
    EXPECT_TRUE(c.server.listen[0].tls);
    EXPECT_TRUE(c.server.listen[0].proxy);
}

TEST(config, tls_table_is_read_into_the_config) {
    config c =
        ok("[server]\nlisten = [\"127.0.0.1:8443 tls\"]\n[tls]\n"
           "certificates = [{ cert = \"a.pem\", key = \"/k/a.key\" }]\n"
           "handshake_timeout = \"3s\"\n");
    ASSERT_TRUE(c.tls);
    ASSERT_EQ(c.tls->certificates.size(), 1u);
    EXPECT_EQ(c.tls->certificates[0].cert, "/srv/site/a.pem");
    EXPECT_EQ(c.tls->certificates[0].key, "/k/a.key");
    EXPECT_EQ(c.tls->handshake_timeout, 3s);
    // Without [tls]: the defaults, no certificates.
    config plain = ok("[server]\nlisten = [\"127.0.0.1:8080\"]\n");
    ASSERT_TRUE(plain.tls);
    EXPECT_TRUE(plain.tls->certificates.empty());
}

TEST(config, tls_errors_name_their_key) {
    EXPECT_EQ(error_of("[tls]\nmin_version = \"1.1\"\n"),
              R"(/srv/site/x.toml:2: tls.min_version: must be "1.2" or "1.3")");
}

TEST(config, duplicate_listen_after_canonicalisation) {
    EXPECT_EQ(error_of("[server]\nlisten = [\"[::1]:80\", \"[0:0::1]:80\"]\n"),
              "/srv/site/x.toml:2: server.listen lists [::1]:80 twice");
    EXPECT_EQ(error_of("[server]\nlisten = [\"localhost:80\", \"127.0.0.1:80\"]\n"),
              "/srv/site/x.toml:2: server.listen lists 127.0.0.1:80 twice");
}

TEST(config, the_same_unix_socket_spelled_two_ways_is_listed_twice) {
    EXPECT_EQ(error_of("[server]\nlisten = [\"unix:/tmp/x.sock\", \"unix://tmp/x.sock\"]\n"),
              "/srv/site/x.toml:2: server.listen lists unix:/tmp/x.sock twice");
}

TEST(config, a_wildcard_beside_a_specific_address_on_its_port_is_refused) {
    const std::string why =
        ": the wildcard address already takes port 80 on every address "
        "(keep one of them)";
    EXPECT_EQ(error_of("[server]\nlisten = [\"*:80\", \"127.0.0.1:80\"]\n"),
              "/srv/site/x.toml:2: server.listen lists 0.0.0.0:80 and 127.0.0.1:80" + why);
    EXPECT_EQ(error_of("[server]\nlisten = [\"127.0.0.1:80\", \"*:80\"]\n"),
              "/srv/site/x.toml:2: server.listen lists 0.0.0.0:80 and 127.0.0.1:80" + why);
    EXPECT_EQ(error_of("[server]\nlisten = [\"[::1]:80\", \"[::]:80\"]\n"),
              "/srv/site/x.toml:2: server.listen lists [::]:80 and [::1]:80" + why);
    // Different ports, or different families (IPv6 listeners are IPv6-only): no overlap.
    EXPECT_EQ(ok("[server]\nlisten = [\"*:80\", \"127.0.0.1:81\", \"[::]:80\", \"[::1]:81\"]\n")
                  .server.listen.size(),
              4u);
    EXPECT_EQ(ok("[server]\nlisten = [\"127.0.0.1:80\", \"127.0.0.2:80\", \"[::1]:80\"]\n")
                  .server.listen.size(),
              3u);
}

TEST(config, each_listen_entry_keeps_its_line) {
    config c = ok("[server]\nlisten = [\n  \"127.0.0.1:80\",\n\n  \"127.0.0.1:81\",\n]\n");
    ASSERT_TRUE(c.lines);
    EXPECT_EQ(c.lines->listen, (std::vector<uint32_t>{3, 5}));
    EXPECT_EQ(detail::listen_site(c, 1), "/srv/site/x.toml:5: server.listen[1]");
    config d = ok("# nothing\n[server]\nbacklog = 5\n");
    EXPECT_EQ(detail::listen_site(d, 0), "/srv/site/x.toml:2: server.listen[0]");
}

// ---- ranges and bounds ---------------------------------------------------------------------

TEST(config, out_of_range_gives_the_range) {
    EXPECT_EQ(error_of("[workers]\nmax = 5000\n"),
              "/srv/site/x.toml:2: workers.max (5000) must be between 1 and 4096");
    EXPECT_EQ(error_of("[workers]\nmax = 0\n"),
              "/srv/site/x.toml:2: workers.max (0) must be between 1 and 4096");
    EXPECT_EQ(error_of("[workers]\nstart = 0\n"),
              "/srv/site/x.toml:2: workers.start (0) must be between 1 and 4096");
    EXPECT_EQ(error_of("[server]\nbacklog = 0\n"),
              "/srv/site/x.toml:2: server.backlog (0) must be between 1 and 65535");
    EXPECT_EQ(error_of("[server]\nbacklog = 65536\n"),
              "/srv/site/x.toml:2: server.backlog (65536) must be between 1 and 65535");
    EXPECT_EQ(error_of("[workers]\nmax_connections = 0\n"),
              "/srv/site/x.toml:2: workers.max_connections (0) must be between 1 and 1048576");
    EXPECT_EQ(error_of("[workers]\nmin_spare = -1\n"),
              "/srv/site/x.toml:2: workers.min_spare (-1) must be between 0 and 4096");
    EXPECT_EQ(error_of("[workers]\nmax_spare = 0\n"),
              "/srv/site/x.toml:2: workers.max_spare (0) must be between 1 and 4096");
    EXPECT_EQ(error_of("[workers]\nmax_requests = -1\n"),
              "/srv/site/x.toml:2: workers.max_requests (-1) must be >= 0");
}

TEST(config, rlimit_nofile_is_0_or_enough_for_a_worker) {
    EXPECT_EQ(ok("[workers]\nrlimit_nofile = 0\n").workers.rlimit_nofile, 0u);
    EXPECT_EQ(ok("[workers]\nrlimit_nofile = 17\n").workers.rlimit_nofile, 17u);
    EXPECT_EQ(ok("[workers]\nrlimit_nofile = 1048576\n").workers.rlimit_nofile, 1048576u);
    EXPECT_EQ(error_of("[workers]\nrlimit_nofile = 15\n"),
              "/srv/site/x.toml:2: workers.rlimit_nofile (15) must be 0 (inherit) or at least 16");
    EXPECT_EQ(error_of("[workers]\nrlimit_nofile = 1048577\n"),
              "/srv/site/x.toml:2: workers.rlimit_nofile (1048577) must be between 0 and 1048576");
    EXPECT_EQ(error_of("[workers]\nrlimit_nofile = -1\n"),
              "/srv/site/x.toml:2: workers.rlimit_nofile (-1) must be between 0 and 1048576");
    EXPECT_EQ(error_of("[workers]\nrlimit_nofile = \"many\"\n"),
              "/srv/site/x.toml:2: workers.rlimit_nofile must be an integer, not a string");
}

TEST(config, rlimit_nofile_leaves_room_beside_the_listeners) {
    std::string listen16 = "[server]\nlisten = [";
    for (int i = 0; i < 16; ++i) listen16 += "\"127.0.0.1:" + std::to_string(8000 + i) + "\",";
    listen16 += "]\n";
    EXPECT_EQ(error_of(listen16 + "[workers]\nrlimit_nofile = 16\n"),
              "/srv/site/x.toml:4: workers.rlimit_nofile (16) is too small for 16 listener(s): "
              "a worker holds each of them, 8 descriptors of its own and needs 8 for "
              "connections; at least 32 (or 0 to inherit)");
    EXPECT_EQ(error_of(listen16 + "[workers]\nrlimit_nofile = 31\n"),
              "/srv/site/x.toml:4: workers.rlimit_nofile (31) is too small for 16 listener(s): "
              "a worker holds each of them, 8 descriptors of its own and needs 8 for "
              "connections; at least 32 (or 0 to inherit)");
    EXPECT_EQ(ok(listen16 + "[workers]\nrlimit_nofile = 32\n").workers.rlimit_nofile, 32u);
    EXPECT_EQ(ok(listen16 + "[workers]\nrlimit_nofile = 0\n").workers.rlimit_nofile, 0u);
    EXPECT_EQ(error_of("[workers]\nrlimit_nofile = 16\n"),
              "/srv/site/x.toml:2: workers.rlimit_nofile (16) is too small for 1 listener(s): "
              "a worker holds each of them, 8 descriptors of its own and needs 8 for "
              "connections; at least 17 (or 0 to inherit)");
}

TEST(config, max_below_start_blames_max) {
    EXPECT_EQ(error_of("[workers]\nstart = 4\n\nmax = 2\n"),
              "/srv/site/x.toml:4: workers.max (2) must be >= workers.start (4)");
}

TEST(config, start_above_default_max_blames_start) {
    EXPECT_EQ(error_of("[workers]\nstart = 65\n"),
              "/srv/site/x.toml:2: workers.start (65) must be <= workers.max (64)");
}

TEST(config, min_spare_above_max_spare) {
    EXPECT_EQ(error_of("[workers]\nmin_spare = 6\nmax_spare = 5\n"),
              "/srv/site/x.toml:3: workers.max_spare (5) must be >= workers.min_spare (6)");
    EXPECT_EQ(error_of("[workers]\nmin_spare = 9\n"),
              "/srv/site/x.toml:2: workers.min_spare (9) must be <= workers.max_spare (8)");
    EXPECT_EQ(ok("[workers]\nmin_spare = 0\nmax_spare = 1\n").workers.min_spare, 0);
}

// ---- log and server values -----------------------------------------------------------------

TEST(config, unknown_log_level) {
    EXPECT_EQ(
        error_of("[log]\nlevel = \"verbose\"\n"),
        R"(/srv/site/x.toml:2: log.level "verbose" is not one of debug, info, warn, error, crit)");
}

TEST(config, error_log_cannot_be_off) {
    EXPECT_EQ(error_of("[log]\nerror = \"off\"\n"),
              R"(/srv/site/x.toml:2: log.error cannot be "off": errors must go somewhere )"
              R"((a path or "stderr"))");
}

TEST(config, empty_log_and_pid_paths_are_rejected) {
    EXPECT_EQ(error_of("[log]\nerror = \"\"\n"),
              R"(/srv/site/x.toml:2: log.error must be a path or "stderr")");
    EXPECT_EQ(error_of("[log]\naccess = \"\"\n"),
              R"(/srv/site/x.toml:2: log.access must be a path, "stderr" or "off")");
    EXPECT_EQ(error_of("[server]\npid_file = \"\"\n"),
              "/srv/site/x.toml:2: server.pid_file must not be empty");
}

TEST(config, nul_bytes_cannot_shorten_names) {
    EXPECT_EQ(error_of("[server]\nuser = \"root\\u0000x\"\n"),
              "/srv/site/x.toml:2: server.user contains a NUL byte");
    EXPECT_EQ(error_of("[server]\npid_file = \"/run/a\\u0000b\"\n"),
              "/srv/site/x.toml:2: server.pid_file contains a NUL byte");
}

TEST(config, control_characters_in_keys_stay_on_one_line) {
    std::string e = error_of("[server]\n\"a\\nb\" = 1\n");
    EXPECT_EQ(e, "/srv/site/x.toml:2: unknown key server.a\\x0ab");
}

TEST(config, bytes_above_ascii_and_backslashes_are_escaped_too) {
    // One escaper for the tree (detail::hex_escaped): a '\' in the file cannot pass for an
    // escape in the message, and bytes that are not ASCII say exactly what the file holds.
    EXPECT_EQ(error_of("[server]\n\"caf\u00e9\" = 1\n"),
              "/srv/site/x.toml:2: unknown key server.caf\\xc3\\xa9");
    EXPECT_EQ(error_of("[server]\n'a\\x0ab' = 1\n"),
              "/srv/site/x.toml:2: unknown key server.a\\x5cx0ab");
}

// ---- application tables --------------------------------------------------------------------

TEST(config, app_tables_reach_schema_parse) {
    config c = ok(R"(
[http]
root = "/var/www"
index = ["a.html", "b.html"]
keepalive_timeout = "250ms"
max_header_bytes = 4096
serve_hidden = true
)",
                  http_schema());
    ASSERT_NE(c.app, nullptr);
    const auto& h = c.app_settings<http_settings>();
    EXPECT_EQ(h.root, "/var/www");
    EXPECT_EQ(h.index, (std::vector<std::string>{"a.html", "b.html"}));
    EXPECT_EQ(h.keepalive_timeout, 250ms);
    EXPECT_EQ(h.max_header_bytes, 4096);
    EXPECT_TRUE(h.serve_hidden);
    EXPECT_EQ(h.status_allow, (std::vector<std::string>{"127.0.0.1/32", "::1/128"}));
}

TEST(config, absent_app_table_gives_a_reader_with_defaults) {
    bool present = true;
    std::string name;
    auto schema = app_with([&](table_reader& r) {
        present = r.present();
        name = r.name();
    });
    ok("[server]\n", schema);
    EXPECT_FALSE(present);
    EXPECT_EQ(name, "http");
    config c = ok("", http_schema());
    EXPECT_EQ(c.app_settings<http_settings>().root, "/var/www/html");
}

TEST(config, app_error_is_returned_as_is) {
    app_schema s;
    s.tables = {"http"};
    s.parse = [](app_tables&) -> result<std::shared_ptr<const void>> {
        return error("the application says no");
    };
    EXPECT_EQ(error_of("[http]\n", s), "the application says no");
}

TEST(config, app_getter_errors_have_file_line_and_key) {
    EXPECT_EQ(error_of("[http]\nroot = \"/x\"\nmax_header_bytes = \"big\"\n", http_schema()),
              "/srv/site/x.toml:3: http.max_header_bytes must be an integer, not a string");
    EXPECT_EQ(
        error_of("[http]\nserve_hidden = \"yes\"\n", http_schema()),
        "/srv/site/x.toml:2: http.serve_hidden must be a boolean (true or false), not a string");
    EXPECT_EQ(error_of("[http]\nmax_header_bytes = 10\n", http_schema()),
              "/srv/site/x.toml:2: http.max_header_bytes (10) must be between 1024 and 1048576");
    EXPECT_EQ(error_of("[http]\n\nrooot = \"/x\"\n", http_schema()),
              "/srv/site/x.toml:3: unknown key http.rooot");
}

TEST(config, app_unknown_keys_are_caught_even_without_finish) {
    auto schema = app_with([](table_reader& r) { r.string("root", ""); }, /*call_finish=*/false);
    EXPECT_EQ(error_of("[http]\nroot = \"/x\"\nextra = 1\n", schema),
              "/srv/site/x.toml:3: unknown key http.extra");
}

TEST(config, core_errors_come_before_app_parse) {
    bool called = false;
    auto schema = app_with([&](table_reader&) { called = true; });
    error_of("[workers]\nmax = 0\n[http]\n", schema);
    EXPECT_FALSE(called);
}

TEST(config, fail_uses_key_line_then_table_line_then_line_one) {
    auto failing = [](std::string key) {
        return app_with([key](table_reader& r) { r.fail(key, "is wrong"); });
    };
    EXPECT_EQ(error_of("\n[http]\n\nroot = \"/x\"\n", failing("root")),
              "/srv/site/x.toml:4: http.root is wrong");
    EXPECT_EQ(error_of("\n[http]\nroot = \"/x\"\n", failing("index")),
              "/srv/site/x.toml:2: http.index is wrong");
    EXPECT_EQ(error_of("\n[server]\n", failing("index")),
              "/srv/site/x.toml:1: http.index is wrong");
    EXPECT_EQ(error_of("\n\n[http]\n", failing("")), "/srv/site/x.toml:3: http is wrong");
}

TEST(config, only_the_first_failure_is_kept_and_later_getters_fall_back) {
    int64_t after = 0;
    auto schema = app_with([&](table_reader& r) {
        r.fail("a", "first");
        r.fail("b", "second");
        after = r.integer("n", 7, 0, 100);
    });
    EXPECT_EQ(error_of("[http]\na = 1\nb = 2\nn = 50\n", schema),
              "/srv/site/x.toml:2: http.a first");
    EXPECT_EQ(after, 7);
}

TEST(config, integer_range_messages_name_open_bounds) {
    auto reading = [](int64_t min, int64_t max) {
        return app_with([=](table_reader& r) { r.integer("n", 0, min, max); });
    };
    EXPECT_EQ(error_of("[http]\nn = 5\n", reading(0, 3)),
              "/srv/site/x.toml:2: http.n (5) must be between 0 and 3");
    EXPECT_EQ(error_of("[http]\nn = 5\n", reading(std::numeric_limits<int64_t>::min(), 3)),
              "/srv/site/x.toml:2: http.n (5) must be <= 3");
    EXPECT_EQ(error_of("[http]\nn = -5\n", reading(0, std::numeric_limits<int64_t>::max())),
              "/srv/site/x.toml:2: http.n (-5) must be >= 0");
}

TEST(config, is_word_matches_only_that_string) {
    bool auto_word = false, other = true, number = true, absent = true;
    auto schema = app_with([&](table_reader& r) {
        auto_word = r.is_word("a", "auto");
        other = r.is_word("b", "auto");
        number = r.is_word("c", "auto");
        absent = r.is_word("d", "auto");
    });
    ok("[http]\na = \"auto\"\nb = \"Auto\"\nc = 1\n", schema);
    EXPECT_TRUE(auto_word);
    EXPECT_FALSE(other);
    EXPECT_FALSE(number);
    EXPECT_FALSE(absent);
}

TEST(config, strings_rejects_non_string_items) {
    auto schema = app_with([](table_reader& r) { r.strings("index", {}); });
    EXPECT_EQ(error_of("[http]\nindex = [\"a\", [\"b\"]]\n", schema),
              "/srv/site/x.toml:2: http.index must be an array of strings (item 2 is an array)");
}

// ---- files ---------------------------------------------------------------------------------

class config_file : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "preforkd-config-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path write(const std::string& name, const std::string& text) {
        fs::path p = dir_ / name;
        std::ofstream(p) << text;
        return p;
    }
    fs::path dir_;
};

TEST_F(config_file, loads_and_resolves_against_its_folder) {
    fs::path p = write("p.toml", "[server]\npid_file = \"p.pid\"\n");
    auto r = load_config(p);
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->path, p);
    EXPECT_EQ(r->server.pid_file, (dir_ / "p.pid").string());
}

TEST_F(config_file, errors_name_the_file) {
    fs::path p = write("bad.toml", "[workers]\nmax = 0\n");
    auto r = load_config(p);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, p.string() + ":2: workers.max (0) must be between 1 and 4096");
}

TEST_F(config_file, missing_file_cannot_be_read) {
    fs::path p = dir_ / "absent.toml";
    auto r = load_config(p);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "cannot read " + p.string() + ": No such file or directory");
    EXPECT_EQ(r.err().code, std::error_code(ENOENT, std::system_category()));
}

TEST_F(config_file, folder_cannot_be_read) {
    auto r = load_config(dir_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "cannot read " + dir_.string() + ": Is a directory");
}

// ---- preforkd -s: server.pid_file only ------------------------------------------------------

TEST_F(config_file, signal_reads_only_the_pid_file) {
    // The application's tables are neither parsed nor checked, nor are the other keys: a
    // running server whose docroot is gone can still be stopped.
    fs::path p = write("s.toml",
                       "[server]\nlisten = [\"nonsense\"]\npid_file = \"run/s.pid\"\n"
                       "[workers]\nstart = 9\nmax = 1\n[http]\nroot = \"/gone\"\ncolour = 1\n");
    auto r = load_pid_file_setting(p);
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(*r, (dir_ / "run/s.pid").string());
    // Unset: the default, as the server has it.
    auto d = load_pid_file_setting(write("d.toml", "[http]\nroot = \"/gone\"\n"));
    ASSERT_TRUE(d.ok()) << d.err().message;
    EXPECT_EQ(*d, server_config{}.pid_file);
}

TEST_F(config_file, signal_still_needs_a_readable_toml_file_and_a_sane_pid_file) {
    fs::path absent = dir_ / "absent.toml";
    auto r = load_pid_file_setting(absent);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "cannot read " + absent.string() + ": No such file or directory");
    fs::path garbage = write("g.toml", "[server]\npid_file = \"x.pid\"\nthis is not toml\n");
    r = load_pid_file_setting(garbage);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message.rfind(garbage.string() + ":3: ", 0), 0u) << r.err().message;
    fs::path wrong = write("w.toml", "[server]\n\npid_file = 42\n");
    r = load_pid_file_setting(wrong);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message,
              wrong.string() + ":3: server.pid_file must be a string, not an integer");
    fs::path empty = write("e.toml", "[server]\npid_file = \"\"\n");
    r = load_pid_file_setting(empty);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, empty.string() + ":2: server.pid_file must not be empty");
    fs::path not_table = write("t.toml", "server = 1\n");
    r = load_pid_file_setting(not_table);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, not_table.string() + ":1: server must be a table, not an integer");
}

// ---- server.user and server.group against the user database --------------------------------

TEST(credentials, an_unknown_user_is_named_with_its_file_and_line) {
    // Root or not, an unknown name fails before any question of who may run as whom.
    auto c = parse_config("[server]\nlisten = [\"127.0.0.1:1\"]\n\nuser = \"no-such-user-xyz\"\n",
                          "/srv/site/x.toml");
    ASSERT_TRUE(c.ok()) << c.err().message;
    EXPECT_EQ(detail::line_of_key(*c, "server.user"), 4u);
    auto r = sys::resolve_credentials(*c);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "/srv/site/x.toml:4: server.user no-such-user-xyz: no such user");
}

TEST(credentials, an_unknown_group_is_named_with_its_file_and_line) {
    auto c = parse_config("[server]\ngroup = \"no-such-group-xyz\"\n", "/srv/site/x.toml");
    ASSERT_TRUE(c.ok()) << c.err().message;
    auto r = sys::resolve_credentials(*c);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "/srv/site/x.toml:2: server.group no-such-group-xyz: no such group");
}

TEST(credentials, keys_left_out_take_the_line_of_their_table) {
    auto c = parse_config("# comment\n\n[server]\nbacklog = 5\n", "/srv/site/x.toml");
    ASSERT_TRUE(c.ok()) << c.err().message;
    EXPECT_EQ(detail::line_of_key(*c, "server.user"), 3u);
    EXPECT_EQ(detail::line_of_key(*c, "server.group"), 3u);
    auto none = parse_config("", "/srv/site/x.toml");
    ASSERT_TRUE(none.ok()) << none.err().message;
    EXPECT_EQ(detail::line_of_key(*none, "server.user"), 1u);
    // A config made in code has no lines: errors about it say line 1.
    EXPECT_EQ(detail::line_of_key(config{}, "server.user"), 1u);
}

TEST(shipped_config, package_config_loads) {
    auto r = load_config(fs::path(PREFORKD_SOURCE_DIR) / "etc/preforkd.toml", http_schema());
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->server.user, "preforkd");
    EXPECT_EQ(r->server.group, "preforkd");
    EXPECT_EQ(r->server.listen[0].to_string(), "127.0.0.1:8080");
    EXPECT_EQ(r->server.pid_file, "/run/preforkd/preforkd.pid");
    EXPECT_EQ(r->workers.start, 4);
    EXPECT_EQ(r->log.error, "/var/log/preforkd/error.log");
    // Set in the file, so the systemd unit (-F) logs there rather than to the journal.
    EXPECT_TRUE(r->log.error_configured);
    EXPECT_EQ(r->app_settings<http_settings>().root, "/var/www/preforkd");
}

TEST(shipped_config, package_config_defaults_match_the_code) {
    // Uncommenting every "# key = value" line must give the defaults again.
    std::ifstream in(fs::path(PREFORKD_SOURCE_DIR) / "etc/preforkd.toml");
    std::string line, text;
    int uncommented = 0;
    while (std::getline(in, line)) {
        if (line.rfind("# ", 0) == 0 && line.find(" = ") != std::string::npos &&
            line.find(' ', 2) == line.find(" = ")) {
            line = line.substr(2);
            ++uncommented;
        }
        text += line + '\n';
    }
    EXPECT_EQ(uncommented, 46);  // every key but user, group, http.root and log.error
    auto r = parse_config(text, "/etc/preforkd/preforkd.toml", http_schema());
    ASSERT_TRUE(r.ok()) << r.err().message;
    auto d = parse_config(
        "[server]\nuser = \"preforkd\"\ngroup = \"preforkd\"\n"
        "[http]\nroot = \"/var/www/preforkd\"\n",
        "/etc/preforkd/preforkd.toml", http_schema());
    ASSERT_TRUE(d.ok()) << d.err().message;
    EXPECT_EQ(r->server.listen, d->server.listen);
    EXPECT_EQ(r->server.backlog, d->server.backlog);
    EXPECT_EQ(r->server.pid_file, d->server.pid_file);
    EXPECT_EQ(r->server.proxy_trusted, d->server.proxy_trusted);
    EXPECT_EQ(r->server.shutdown_delay, d->server.shutdown_delay);
    EXPECT_EQ(r->workers.start, d->workers.start);
    EXPECT_EQ(r->workers.min_spare, d->workers.min_spare);
    EXPECT_EQ(r->workers.max_spare, d->workers.max_spare);
    EXPECT_EQ(r->workers.max, d->workers.max);
    EXPECT_EQ(r->workers.max_connections, d->workers.max_connections);
    EXPECT_EQ(r->workers.max_requests, d->workers.max_requests);
    EXPECT_EQ(r->workers.graceful_timeout, d->workers.graceful_timeout);
    EXPECT_EQ(r->workers.heartbeat_timeout, d->workers.heartbeat_timeout);
    EXPECT_EQ(r->workers.rlimit_nofile, d->workers.rlimit_nofile);
    EXPECT_EQ(r->log.error, d->log.error);
    EXPECT_EQ(r->log.access, d->log.access);
    EXPECT_EQ(r->log.level, d->log.level);
    EXPECT_EQ(r->log.access_format, d->log.access_format);
    const auto& h = r->app_settings<http_settings>();
    EXPECT_EQ(h.index, std::vector<std::string>{"index.html"});
    EXPECT_EQ(h.keepalive_timeout, 5s);
    EXPECT_EQ(h.max_header_bytes, 8192);
    EXPECT_FALSE(h.serve_hidden);
    EXPECT_EQ(h.status_allow, (std::vector<std::string>{"127.0.0.1/32", "::1/128"}));
    EXPECT_EQ(h.site_rule_count, 0);
    EXPECT_EQ(h.precompressed, (std::vector<std::string>{"br", "zstd", "gzip"}));
    EXPECT_TRUE(h.compress.empty());
    EXPECT_EQ(h.compress_cache, "/var/cache/preforkd");
    EXPECT_EQ(h.compress_cache_max, "256MiB");
    EXPECT_EQ(h.compress_max_size, "8MiB");
    ASSERT_TRUE(r->tls && d->tls);
    EXPECT_TRUE(r->tls->certificates.empty());
    EXPECT_EQ(r->tls->min, d->tls->min);
    EXPECT_EQ(r->tls->ciphers, d->tls->ciphers);
    EXPECT_EQ(r->tls->session_tickets, d->tls->session_tickets);
    EXPECT_EQ(r->tls->ktls, d->tls->ktls);
    EXPECT_EQ(r->tls->handshake_timeout, d->tls->handshake_timeout);
}

TEST(shipped_config, demo_config_loads) {
    fs::path etc = fs::path(PREFORKD_SOURCE_DIR) / "etc";
    auto r = load_config(etc / "demo.toml", http_schema());
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->server.listen[0].to_string(), "127.0.0.1:8080");
    EXPECT_EQ(r->server.pid_file, "/tmp/preforkd-demo.pid");
    EXPECT_EQ(r->workers.start, 2);
    EXPECT_EQ(r->log.error, "stderr");
    EXPECT_EQ(r->log.access, "stderr");
    EXPECT_EQ(r->app_settings<http_settings>().root, (etc / "www").lexically_normal().string());
}

TEST(config, proxy_trusted_defaults_to_loopback_and_reads_blocks) {
    auto d = parse("");
    ASSERT_TRUE(d.ok());
    sockaddr_storage lo{};
    auto* in = reinterpret_cast<sockaddr_in*>(&lo);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(0x7f000001);
    EXPECT_TRUE(detail::trusted(lo, d->server.proxy_trusted));
    in->sin_addr.s_addr = htonl(0x7f000002);
    EXPECT_FALSE(detail::trusted(lo, d->server.proxy_trusted));
    EXPECT_EQ(d->server.shutdown_delay, milliseconds(0));

    auto c = parse("[server]\nproxy_trusted = [\"10.0.0.0/8\"]\nshutdown_delay = \"2s\"\n");
    ASSERT_TRUE(c.ok()) << c.err().message;
    ASSERT_EQ(c->server.proxy_trusted.size(), 1u);
    EXPECT_EQ(c->server.proxy_trusted[0].bits, 8u);
    EXPECT_EQ(c->server.shutdown_delay, milliseconds(2000));
}

TEST(config, a_bad_proxy_trusted_block_names_its_line) {
    std::string e = error_of("[server]\n\nproxy_trusted = [\"10.0.0.0/33\"]\n");
    EXPECT_EQ(e.rfind("/srv/site/x.toml:3: server.proxy_trusted", 0), 0u) << e;
}

}  // namespace
}  // namespace preforkd
