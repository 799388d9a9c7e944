// load_config: TOML text -> config, every key checked, every error one `file:line: key` line.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <system_error>
#include <utility>

#include "core/config_app_tables.hpp"
#include "core/config_lines.hpp"
#include "core/config_reader.hpp"
#include "core/pid_file_setting.hpp"
#include "tls/tls_config.hpp"

namespace preforkd {

namespace {

using detail::toml_table_reader;

constexpr std::array<std::string_view, 4> core_tables = {"server", "workers", "log", "tls"};
// A config file is a few kilobytes; anything this big is the wrong file.
constexpr off_t max_config_bytes = 16 << 20;
// Far above any useful per-worker count, low enough that worker arrays stay sane.
constexpr int64_t max_connections_limit = 1 << 20;
// A worker's descriptors besides its listeners: the std streams, epoll, signalfd, the error
// and access logs, the docroot and the mime file while it loads (HTTP). Counted on a worker
// of the built-in server: /proc/PID/fd lists 3 + listeners + 5 once it is up.
constexpr int64_t worker_own_descriptors = 8;
// Room for a few connections (a socket and an open file each) beyond the worker's own: a
// limit below own + listeners + this serves next to nothing, and each accept meets EMFILE.
constexpr int64_t connection_headroom = 8;
// Fewer than this could not serve a single connection, whatever the listeners. The top is
// Linux's default fs.nr_open, above which setrlimit fails anyway.
constexpr int64_t min_rlimit_nofile = worker_own_descriptors + connection_headroom;
constexpr int64_t max_rlimit_nofile = 1 << 20;

// What "auto" means: the CPUs this process may run on (a cpuset or taskset can be smaller
// than the machine), falling back to the online count.
int cpu_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(std::min<long>(n, max_workers_limit)) : 1;
}

// lo <= hi, or an error on the key the user most likely got wrong: the upper bound when the
// file sets it, else the lower one.
void check_order(toml_table_reader& r, std::string_view lo_key, int64_t lo, std::string_view hi_key,
                 int64_t hi) {
    if (lo <= hi) return;
    const std::string& t = r.name();
    if (r.has(hi_key)) {
        r.fail(hi_key, '(' + std::to_string(hi) + ") must be >= " + t + '.' + std::string(lo_key) +
                           " (" + std::to_string(lo) + ')');
    } else {
        r.fail(lo_key, '(' + std::to_string(lo) + ") must be <= " + t + '.' + std::string(hi_key) +
                           " (" + std::to_string(hi) + ')');
    }
}

std::string no_nul(toml_table_reader& r, std::string_view key, std::string value) {
    // getpwnam("root\0x") would look up "root": never let a NUL shorten a name.
    if (value.find('\0') != std::string::npos) r.fail(key, "contains a NUL byte");
    return value;
}

void read_pid_file(toml_table_reader& r, server_config& s) {
    if (!r.has("pid_file")) return;
    std::string pid = r.path("pid_file", s.pid_file);
    if (!r.failed() && pid.empty()) r.fail("pid_file", "must not be empty");
    s.pid_file = std::move(pid);
}

bool is_wildcard(const listen_address& a) {
    return (a.family == listen_address::family_t::inet4 && a.host == "0.0.0.0") ||
           (a.family == listen_address::family_t::inet6 && a.host == "::");
}

// Linux refuses to bind a wildcard and a specific address of the same family on one port
// (EADDRINUSE, SO_REUSEADDR or not): the wildcard already takes every address. IPv4 and IPv6
// never collide, since IPv6 listeners are IPv6-only.
std::string overlap(const std::vector<listen_address>& out, const listen_address& a) {
    if (a.family == listen_address::family_t::unix_path) return {};
    for (const listen_address& b : out) {
        if (b.family != a.family || b.port != a.port || is_wildcard(a) == is_wildcard(b)) continue;
        const listen_address& any = is_wildcard(a) ? a : b;
        const listen_address& one = is_wildcard(a) ? b : a;
        return "lists " + any.to_string() + " and " + one.to_string() + ": the wildcard " +
               "address already takes port " + std::to_string(a.port) +
               " on every address (keep one of them)";
    }
    return {};
}

void read_listen(toml_table_reader& r, server_config& s, std::vector<uint32_t>& lines) {
    const uint32_t key_line = r.line_for("listen");
    std::vector<std::string> entries = r.strings("listen", {});
    if (!r.failed() && entries.empty()) r.fail("listen", "must list at least one address");
    std::vector<listen_address> out;
    const auto* arr = r.peek("listen") ? r.peek("listen")->as_array() : nullptr;
    for (const std::string& e : entries) {
        auto [text, flags] = split_listen_entry(e);
        auto a = parse_listen_address(text);
        if (!a) {
            r.fail("listen", a.err().message);
            break;
        }
        if (auto f = parse_listen_flags(flags, *a); !f) {
            // `file:line: server.listen[N] "*:443 tsl" has an unknown flag "tsl" ...`
            const size_t n = out.size();
            const uint32_t line =
                arr && arr->get(n) ? detail::line_of(*arr->get(n), key_line) : key_line;
            r.fail_at(line, "listen[" + std::to_string(n) + "] \"" + detail::hex_escaped(e) + '"',
                      f.err().message);
            break;
        }
        // Two sockets on one address cannot both bind; say which entry repeats (flags do not
        // make a second socket).
        if (std::find_if(out.begin(), out.end(), [&](const listen_address& b) {
                return same_socket(b, *a);
            }) != out.end()) {
            r.fail("listen", "lists " + a->to_string() + " twice");
            break;
        }
        if (std::string why = overlap(out, *a); !why.empty()) {
            r.fail("listen", why);
            break;
        }
        out.push_back(std::move(*a));
    }
    if (r.failed()) return;
    s.listen = std::move(out);
    lines.clear();
    for (size_t i = 0; i < s.listen.size(); ++i)
        lines.push_back(detail::line_of(*arr->get(i), key_line));
}

void read_server(toml_table_reader& r, server_config& s, detail::config_lines& lines) {
    if (r.has("listen")) {
        read_listen(r, s, lines.listen);
    } else {
        lines.listen.assign(s.listen.size(), r.line_for("listen"));
    }
    s.backlog = static_cast<int>(r.integer("backlog", s.backlog, 1, 65535));
    s.user = no_nul(r, "user", r.string("user", s.user));
    s.group = no_nul(r, "group", r.string("group", s.group));
    read_pid_file(r, s);
    if (r.has("proxy_trusted")) {
        std::vector<detail::cidr> trusted;
        for (const std::string& text : r.strings("proxy_trusted", {})) {
            auto c = detail::parse_cidr(text);
            if (!c) {
                r.fail("proxy_trusted", c.err().message);
                break;
            }
            trusted.push_back(*c);
        }
        if (!r.failed()) s.proxy_trusted = std::move(trusted);
    }
    s.shutdown_delay = r.duration("shutdown_delay", s.shutdown_delay);
}

void read_workers(toml_table_reader& r, workers_config& w) {
    const toml::node* start = r.peek("start");
    if (r.is_word("start", "auto")) {
        w.start_auto = true;
    } else if (start && start->is_string()) {
        r.fail("start", R"(must be an integer or "auto", not ")" +
                            detail::hex_escaped(start->as_string()->get()) + '"');
    } else {
        w.start = static_cast<int>(r.integer("start", w.start, 1, max_workers_limit));
    }
    w.min_spare = static_cast<int>(r.integer("min_spare", w.min_spare, 0, max_workers_limit));
    w.max_spare = static_cast<int>(r.integer("max_spare", w.max_spare, 1, max_workers_limit));
    w.max = static_cast<int>(r.integer("max", w.max, 1, max_workers_limit));
    w.max_connections =
        static_cast<int>(r.integer("max_connections", w.max_connections, 1, max_connections_limit));
    w.max_requests =
        static_cast<uint64_t>(r.integer("max_requests", static_cast<int64_t>(w.max_requests), 0,
                                        std::numeric_limits<int64_t>::max()));
    w.graceful_timeout = r.duration("graceful_timeout", w.graceful_timeout);
    w.heartbeat_timeout = r.duration("heartbeat_timeout", w.heartbeat_timeout);
    w.rlimit_nofile = static_cast<uint64_t>(
        r.integer("rlimit_nofile", static_cast<int64_t>(w.rlimit_nofile), 0, max_rlimit_nofile));
    if (r.failed()) return;

    // "auto" adapts to the machine, so a small max caps it instead of making the same file
    // valid on one host and invalid on a bigger one.
    if (w.start_auto) w.start = std::min(cpu_count(), w.max);
    check_order(r, "start", w.start, "max", w.max);
    check_order(r, "min_spare", w.min_spare, "max_spare", w.max_spare);
    if (w.graceful_timeout.count() <= 0) {
        r.fail("graceful_timeout",
               '(' + detail::format_duration(w.graceful_timeout) + ") must be > 0");
    }
    // Workers beat once a second and a loaded machine delays a beat by some milliseconds:
    // a timeout of one beat would kill healthy workers. Three beats leave two to be late.
    if (w.heartbeat_timeout < std::chrono::seconds(3)) {
        r.fail("heartbeat_timeout",
               '(' + detail::format_duration(w.heartbeat_timeout) +
                   ") must be at least 3s (workers beat once a second; three beats)");
    }
    if (w.rlimit_nofile != 0 && w.rlimit_nofile < static_cast<uint64_t>(min_rlimit_nofile)) {
        r.fail("rlimit_nofile", '(' + std::to_string(w.rlimit_nofile) +
                                    ") must be 0 (inherit) or at least " +
                                    std::to_string(min_rlimit_nofile));
    }
}

// Every worker holds every listener: a limit that leaves no room beside them lets workers
// die at start (EMFILE on their signalfd) or never accept, which a reload would only find out
// once the old generation is retiring.
void check_descriptor_budget(toml_table_reader& r, const workers_config& w, size_t listeners) {
    if (r.failed() || w.rlimit_nofile == 0) return;
    const uint64_t needed = listeners + static_cast<uint64_t>(min_rlimit_nofile);
    if (w.rlimit_nofile >= needed) return;
    r.fail("rlimit_nofile",
           '(' + std::to_string(w.rlimit_nofile) + ") is too small for " +
               std::to_string(listeners) + " listener(s): a worker holds each of them, " +
               std::to_string(worker_own_descriptors) + " descriptors of its own and needs " +
               std::to_string(connection_headroom) + " for connections; at least " +
               std::to_string(needed) + " (or 0 to inherit)");
}

// The lines of the keys checked after the load (see config_lines.hpp).
void note_lines(const toml_table_reader& r, std::initializer_list<std::string_view> keys,
                detail::config_lines& lines) {
    for (std::string_view k : keys) lines.keys[r.name() + '.' + std::string(k)] = r.line_for(k);
}

void read_log(toml_table_reader& r, log_config& l) {
    if (r.is_word("error", "off")) {
        r.fail("error", R"(cannot be "off": errors must go somewhere (a path or "stderr"))");
    } else if (r.is_word("error", "stderr")) {
        l.error = "stderr";
        l.error_configured = true;
    } else if (r.has("error")) {
        l.error_configured = true;
        l.error = r.path("error", l.error);
        if (!r.failed() && l.error.empty()) r.fail("error", R"(must be a path or "stderr")");
    }

    if (r.is_word("access", "off") || r.is_word("access", "stderr")) {
        l.access = r.string("access", l.access);
    } else if (r.has("access")) {
        l.access = r.path("access", l.access);
        if (!r.failed() && l.access.empty()) {
            r.fail("access", R"(must be a path, "stderr" or "off")");
        }
    }

    if (r.has("access_format")) {
        static constexpr std::pair<std::string_view, access_log_format> formats[] = {
            {"combined", access_log_format::combined},
            {"vhost_combined", access_log_format::vhost_combined},
            {"json", access_log_format::json}};
        std::string word = r.string("access_format", "combined");
        auto it = std::find_if(std::begin(formats), std::end(formats),
                               [&](const auto& p) { return p.first == word; });
        if (r.failed()) {
            // a wrong type: already reported
        } else if (it == std::end(formats)) {
            r.fail("access_format", '"' + detail::hex_escaped(word) +
                                        R"(" is not one of combined, vhost_combined, json)");
        } else {
            l.access_format = it->second;
        }
    }

    if (r.has("level")) {
        static constexpr std::pair<std::string_view, log_level> levels[] = {
            {"debug", log_level::debug},
            {"info", log_level::info},
            {"warn", log_level::warn},
            {"error", log_level::error},
            {"crit", log_level::crit}};
        std::string word = r.string("level", "info");
        if (r.failed()) return;
        auto it = std::find_if(std::begin(levels), std::end(levels),
                               [&](const auto& p) { return p.first == word; });
        if (it == std::end(levels)) {
            r.fail("level", '"' + detail::hex_escaped(word) +
                                R"(" is not one of debug, info, warn, error, crit)");
        } else {
            l.level = it->second;
        }
    }
}

// Every top-level entry must be a table we know: catch "[servr]" and keys written above
// the first header before anything else.
result<void> check_top_level(const toml::table& root, const std::string& name,
                             const app_schema& schema) {
    std::string problem;
    uint32_t problem_line = 0;
    for (const auto& [key, node] : root) {
        std::string_view k = key.str();
        bool known =
            std::find(core_tables.begin(), core_tables.end(), k) != core_tables.end() ||
            std::find(schema.tables.begin(), schema.tables.end(), k) != schema.tables.end();
        const bool array =
            std::find(schema.arrays.begin(), schema.arrays.end(), k) != schema.arrays.end();
        std::string msg;
        if (array) {
            const toml::array* arr = node.as_array();
            if (arr && arr->is_array_of_tables()) continue;
            msg = detail::hex_escaped(k) + " must be an array of tables ([[" +
                  detail::hex_escaped(k) + "]]), not " + std::string(detail::type_name(node));
        } else if (known && !node.is_table()) {
            msg = detail::hex_escaped(k) + " must be a table, not " +
                  std::string(detail::type_name(node));
        } else if (!known && node.is_table()) {
            msg = "unknown table " + detail::hex_escaped(k);
        } else if (!known) {
            msg = "unknown key " + detail::hex_escaped(k) + " outside any table";
        } else {
            continue;
        }
        // The table is a map sorted by name: report the problem nearest the top of the file.
        uint32_t line = detail::line_of(node, 1);
        if (problem.empty() || line < problem_line) {
            problem = std::move(msg);
            problem_line = line;
        }
    }
    if (problem.empty()) return {};
    return error(name + ':' + std::to_string(problem_line) + ": " + problem);
}

// The file's text: a config file is small, so anything but a readable regular file of sane
// size is reported as the wrong file.
result<std::string> read_config_text(const std::string& name) {
    unique_fd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return error::from_errno(errno, "cannot read " + name);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return error::from_errno(errno, "cannot read " + name);
    if (S_ISDIR(st.st_mode)) return error::from_errno(EISDIR, "cannot read " + name);
    if (st.st_size > max_config_bytes) {
        return error(std::make_error_code(std::errc::file_too_large),
                     "cannot read " + name + ": larger than 16 MiB, not a config file");
    }
    std::string text;
    char buf[16384];
    for (;;) {
        ssize_t n = detail::retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
        if (n < 0) return error::from_errno(errno, "cannot read " + name);
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > static_cast<size_t>(max_config_bytes)) {
            return error(std::make_error_code(std::errc::file_too_large),
                         "cannot read " + name + ": larger than 16 MiB, not a config file");
        }
    }
    return text;
}

result<toml::table> parse_toml(std::string_view text, const std::string& name) {
    try {
        return toml::parse(text, name);
    } catch (const toml::parse_error& e) {
        uint32_t line = e.source().begin.line > 0 ? e.source().begin.line : 1;
        return error(name + ':' + std::to_string(line) + ": " +
                     detail::hex_escaped(e.description()));
    }
}

}  // namespace

result<config> parse_config(std::string_view toml_text, const std::string& name,
                            const app_schema& schema) {
    config cfg;
    std::error_code ec;
    std::filesystem::path abs = name.empty()
                                    ? std::filesystem::path()
                                    : std::filesystem::absolute(name, ec).lexically_normal();
    if (ec) return error(ec, "cannot resolve " + name + ": " + ec.message());
    cfg.path = abs;
    std::filesystem::path base_dir = abs.empty() ? std::filesystem::path("/") : abs.parent_path();

    auto parsed = parse_toml(toml_text, name);
    if (!parsed) return std::move(parsed).err();
    const toml::table& root = *parsed;

    if (auto top = check_top_level(root, name, schema); !top) return std::move(top).err();

    auto reader = [&](std::string_view t) {
        return toml_table_reader(std::string(t), root[t].as_table(), name, base_dir);
    };
    auto lines = std::make_shared<detail::config_lines>();
    toml_table_reader server = reader("server");
    read_server(server, cfg.server, *lines);
    if (auto r = server.finish(); !r) return std::move(r).err();
    note_lines(server, {"listen", "user", "group", "pid_file"}, *lines);
    toml_table_reader workers = reader("workers");
    read_workers(workers, cfg.workers);
    check_descriptor_budget(workers, cfg.workers, cfg.server.listen.size());
    if (auto r = workers.finish(); !r) return std::move(r).err();
    note_lines(workers, {"rlimit_nofile"}, *lines);
    toml_table_reader log = reader("log");
    read_log(log, cfg.log);
    if (auto r = log.finish(); !r) return std::move(r).err();
    note_lines(log, {"error", "access"}, *lines);
    cfg.lines = std::move(lines);

    auto tls = tls::parse_tls_settings(root["tls"].as_table(), name, base_dir);
    if (!tls) return std::move(tls).err();
    for (size_t i = 0; i < cfg.server.listen.size(); ++i) {
        const listen_address& a = cfg.server.listen[i];
        if (a.tls && tls->certificates.empty()) {
            return error(detail::listen_site(cfg, i) + " \"" + a.to_string() + a.flags_string() +
                         "\" is a tls listener, but [tls] lists no certificates");
        }
    }
    cfg.tls = std::make_shared<const tls::tls_settings>(std::move(*tls));

    detail::app_tables_impl apps(root, name, base_dir);
    if (schema.parse) {
        auto app = schema.parse(apps);
        if (!app) return std::move(app).err();
        cfg.app = std::move(*app);
        cfg.log.app_files = std::move(apps.log_files());
    }
    // A key the application never asked for is unknown even if its parse forgot finish().
    for (const std::string& t : schema.tables) {
        if (auto r = apps.table(t).finish(); !r) return std::move(r).err();
    }
    for (const std::string& t : schema.arrays) {
        for (table_reader* item : apps.array(t))
            if (auto r = item->finish(); !r) return std::move(r).err();
    }
    return cfg;
}

result<config> load_config(const std::filesystem::path& file, const app_schema& schema) {
    const std::string name = file.string();
    auto text = read_config_text(name);
    if (!text) return std::move(text).err();
    return parse_config(*text, name, schema);
}

result<std::string> load_pid_file_setting(const std::filesystem::path& file) {
    const std::string name = file.string();
    auto text = read_config_text(name);
    if (!text) return std::move(text).err();
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(name, ec).lexically_normal();
    if (ec) return error(ec, "cannot resolve " + name + ": " + ec.message());
    auto root = parse_toml(*text, name);
    if (!root) return std::move(root).err();
    // The rest of the file is not this command's business: the running server validated it
    // when it loaded it, and what it names (a docroot, a user) may be gone since.
    const toml::node* server = root->get("server");
    if (server && !server->is_table())
        return error(name + ':' + std::to_string(detail::line_of(*server, 1)) +
                     ": server must be a table, not " + std::string(detail::type_name(*server)));
    toml_table_reader r("server", server ? server->as_table() : nullptr, name, abs.parent_path());
    server_config s;
    read_pid_file(r, s);
    if (r.failed()) return r.finish().err();  // the one recorded problem; unread keys are fine
    return s.pid_file;
}

}  // namespace preforkd
