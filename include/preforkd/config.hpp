// The configuration: plain structs filled from TOML by load_config().
//
// The core owns the [server], [workers] and [log] tables. Any other table belongs to the
// application (the built-in HTTP server owns [http]) and is parsed by the application's
// own function, with the same readers and the same `file:line: key` errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <preforkd/detail/cidr.hpp>
#include <preforkd/result.hpp>
#include <preforkd/version.hpp>  // every engine header brings PREFORKD_VERSION
#include <stdexcept>
#include <string>
#include <vector>

namespace preforkd {

using std::chrono::milliseconds;

inline constexpr const char* default_config_path = "/etc/preforkd/preforkd.toml";
// Upper bound of workers.max; the scoreboard reserves this many slots (untouched ones cost no
// memory).
inline constexpr int max_workers_limit = 4096;

// One `listen` entry: "host:port", "[v6]:port", "*:port" or "unix:/path", optionally followed
// by space-separated flags: "*:443 tls", "[::]:443 tls proxy".
struct listen_address {
    enum class family_t { inet4, inet6, unix_path };
    family_t family = family_t::inet4;
    std::string host;  // numeric address ("0.0.0.0" for "*"); empty for unix
    uint16_t port = 0;
    std::string path;    // unix only
    bool tls = false;    // the listener speaks TLS
    bool proxy = false;  // every connection starts with a PROXY protocol header

    // Canonical spelling of the socket, without flags ("127.0.0.1:8080", "[::1]:8080",
    // "unix:/run/x.sock").
    std::string to_string() const;
    // The flags as written canonically (" tls proxy", "" without flags), for messages.
    std::string flags_string() const;
    // Two entries naming one socket, whatever their flags: a reload keeps that socket open
    // (its accept queue survives) and the new generation applies the new flags to it.
    friend bool same_socket(const listen_address& a, const listen_address& b) {
        return a.family == b.family && a.host == b.host && a.port == b.port && a.path == b.path;
    }
    friend bool operator==(const listen_address&, const listen_address&) = default;
};

// Parses one listen entry with its flags; the error message says what is wrong with `text`
// (no file/line).
result<listen_address> parse_listen_address(std::string_view text);
// Parses the flags part of an entry (what follows the address: "tls proxy") into `out`.
result<void> parse_listen_flags(std::string_view flags, listen_address& out);
// Splits an entry at the first blank: {address, flags}.
std::pair<std::string_view, std::string_view> split_listen_entry(std::string_view text);

// "250ms", "5s", "2m", "1h" or a bare integer of seconds (as a string, e.g. "30"); >= 0.
result<milliseconds> parse_duration(std::string_view text);

struct server_config {
    std::vector<listen_address> listen{*parse_listen_address("127.0.0.1:8080")};
    int backlog = 511;
    std::string user;   // "" = nobody when started as root
    std::string group;  // "" = the user's primary group
    std::string pid_file = "/run/preforkd/preforkd.pid";
    // Peers whose PROXY protocol header a `proxy` listener believes; anyone else is closed
    // without an answer. Default: loopback only (a balancer on the same host).
    std::vector<detail::cidr> proxy_trusted{*detail::parse_cidr("127.0.0.1/32"),
                                            *detail::parse_cidr("::1/128")};
    // After TERM: keep serving this long with health answering 503, then stop as QUIT.
    milliseconds shutdown_delay{0};
};

struct workers_config {
    int start = 4;            // resolved: "auto" becomes the CPU count
    bool start_auto = false;  // true when the file said "auto"
    int min_spare = 1;
    int max_spare = 8;
    int max = 64;
    int max_connections = 512;
    uint64_t max_requests = 0;  // 0 = never
    milliseconds graceful_timeout{30'000};
    milliseconds heartbeat_timeout{30'000};
    // RLIMIT_NOFILE (soft and hard) each worker sets before dropping privileges; 0 = inherit.
    uint64_t rlimit_nofile = 0;
};

enum class log_level { debug, info, warn, error, crit };
// log.access_format: Combined Log Format, Apache's vhost_combined, or one JSON object a line.
enum class access_log_format { combined, vhost_combined, json };

struct log_config {
    std::string error = "/var/log/preforkd/error.log";  // a path or "stderr"
    bool error_configured = false;  // the file set `error` (-F logs to stderr otherwise)
    std::string access = "/var/log/preforkd/access.log";  // a path, "stderr" or "off"
    access_log_format access_format = access_log_format::combined;
    // The application's own log files (a site's access_log), named by app_tables::log_file:
    // the supervisor makes them the workers' user's and re-creates them on USR1 before the
    // workers reopen them by name, as it does for `access`.
    std::vector<std::string> app_files;
    log_level level = log_level::info;
};

class table_reader;

namespace detail {
struct config_lines;  // private to the engine: src/core/config_lines.hpp
}

// The application's tables of one file, handed to app_schema::parse.
class app_tables {
  public:
    virtual ~app_tables() = default;
    // One of app_schema::tables (present in the file or not: absent means all defaults).
    virtual table_reader& table(std::string_view name) = 0;
    // One of app_schema::arrays, an array of tables ([[site]]): a reader per table, in file
    // order, named "site[0]", "site[1]"... in messages (`file:line: site[1].root ...`). None
    // when the file has no such array. Call finish() on each.
    virtual std::vector<table_reader*> array(std::string_view name) {
        (void)name;
        return {};
    }
    // Declares a log file the application writes and reopens by name on USR1 (it opens the
    // file itself): see log_config::app_files.
    virtual void log_file(const std::string& path) { (void)path; }
};

// How an application adds its own tables. `parse` is called once per (re)load in the
// supervisor, before anything running changes; its result travels to every worker of
// that generation (as config::app). An application with no tables leaves both empty.
struct app_schema {
    std::vector<std::string> tables;
    // Top-level arrays of tables the application reads with app_tables::array ([[site]]).
    std::vector<std::string> arrays;
    std::function<result<std::shared_ptr<const void>>(app_tables&)> parse;
};

namespace tls {
struct tls_settings;  // the [tls] table (engine-internal: src/tls/tls_settings.hpp)
}

namespace detail {
// Settings made by settings_table<T> are owned through this deleter, which records T: what
// config::app_settings<T>() checks.
template <class T>
inline constexpr char settings_type_id = 0;  // its address stands for T
struct typed_settings_deleter {
    const void* type;
    void (*destroy)(const void*) noexcept;
    void operator()(const void* p) const noexcept { destroy(p); }
};
}  // namespace detail

struct config {
    std::filesystem::path path;  // the file it came from ("" for built-in defaults)
    // Where the keys were in the file, for the checks made after the load (the user database,
    // the folders of the logs, bind errors) to name `file:line: key` as load errors do.
    // Internal (detail); null for a config not read from a file.
    std::shared_ptr<const detail::config_lines> lines;
    server_config server;
    workers_config workers;
    log_config log;
    // [tls], internal (detail): the supervisor loads its certificates before it forks. Never
    // null for a config read from a file (no [tls]: defaults, no certificates).
    std::shared_ptr<const tls::tls_settings> tls;
    std::shared_ptr<const void> app;  // what app_schema::parse returned

    // The application's settings: T must be the type its app_schema::parse made. Settings
    // made by settings_table<T> carry their type, and asking for another one throws
    // std::logic_error (a programming error, caught at the first call rather than read as
    // garbage); so does asking without a schema.
    template <class T>
    const T& app_settings() const {
        if (!app) throw std::logic_error("app_settings: the application has no settings table");
        const auto* typed = std::get_deleter<detail::typed_settings_deleter>(app);
        if (typed && typed->type != &detail::settings_type_id<T>)
            throw std::logic_error("app_settings<T>: T is not the type of the settings");
        return *static_cast<const T*>(app.get());
    }
};

// Reads, validates and fills defaults. Errors are one line: `file:line: key problem`.
// Unknown tables and keys, wrong types, bad durations and addresses and inconsistent
// bounds are all errors.
result<config> load_config(const std::filesystem::path& file, const app_schema& schema = {});

// The same, from a string (tests and fuzzing); `name` stands for the file in messages.
result<config> parse_config(std::string_view toml_text, const std::string& name,
                            const app_schema& schema = {});

// Typed access to one TOML table, for the core tables and for applications' tables.
// Each getter returns the key's value, or `fallback` when the key is absent. The first
// problem (wrong type, out of range, bad duration, unknown key) is kept, later getters
// return their fallback, and finish() reports it: parse a whole table, then check once.
class table_reader {
  public:
    virtual ~table_reader() = default;

    virtual const std::string& name() const = 0;  // "http"
    virtual bool present() const = 0;             // the file has this table

    virtual std::string string(std::string_view key, std::string fallback) = 0;
    // A string naming a file or folder; a relative one is resolved against the folder of
    // the config file, so a config and its site can travel together. Empty stays empty.
    virtual std::string path(std::string_view key, std::string fallback) = 0;
    virtual int64_t integer(std::string_view key, int64_t fallback, int64_t min, int64_t max) = 0;
    virtual bool boolean(std::string_view key, bool fallback) = 0;
    virtual milliseconds duration(std::string_view key, milliseconds fallback) = 0;
    virtual std::vector<std::string> strings(std::string_view key,
                                             std::vector<std::string> fallback) = 0;
    // True when the key holds a string equal to `word` (e.g. workers.start = "auto").
    virtual bool is_word(std::string_view key, std::string_view word) = 0;

    // Records a problem with `key` (or the table when key is empty) if none is recorded yet:
    // "file:line: table.key message", with the key's line (the table's line if absent).
    virtual void fail(std::string_view key, std::string_view message) = 0;
    // The first problem; also reports keys that no getter asked for as unknown.
    virtual result<void> finish() = 0;

    // Nested tables (site rules: error_pages = { 404 = "/404.html" }, headers = [ {...} ]).
    // The readers returned belong to this one, which reports their problems and unknown keys
    // in its own finish(). A reader that does not support them records a problem.
    //
    // The table at `key` (inline or not), read as "name.key"; null when the key is absent,
    // or is not a table (recorded as a problem).
    virtual table_reader* sub_table(std::string_view key) {
        fail(key, "cannot be read here (no nested tables)");
        return nullptr;
    }
    // The array of tables at `key`, one reader per item, read as "name.key[0]"...; empty
    // when the key is absent, or is not an array of tables (recorded as a problem).
    virtual std::vector<table_reader*> table_array(std::string_view key) {
        fail(key, "cannot be read here (no arrays of tables)");
        return {};
    }
    // The keys of this table in the order the file writes them: for tables whose keys are
    // data (status codes, header names). Reading them does not mark them as read.
    virtual std::vector<std::string> keys() const { return {}; }
};

// The usual case of app_schema: one table read into one plain struct. `read(reader, s)` gets
// a Settings whose members hold their defaults and overwrites those the file sets:
//
//     struct echo_settings { std::string prefix; milliseconds timeout{30'000}; };
//     app.schema = settings_table<echo_settings>("echo", [](table_reader& t, echo_settings& s) {
//         s.prefix = t.string("prefix", s.prefix);
//         s.timeout = t.duration("timeout", s.timeout);
//     });
//
// Wrong types, unknown keys and t.fail() (for checks between keys) fail the load with the
// core's `file:line: echo.key ...` message: at start (exit 1) or at SIGHUP (the old
// configuration stays). Workers of each generation read their own copy with
// cfg().app_settings<echo_settings>() (connection::settings<echo_settings>()).
template <class Settings, class Read>
app_schema settings_table(std::string table, Read read) {
    app_schema schema;
    schema.tables.push_back(table);
    schema.parse = [table = std::move(table), read = std::move(read)](
                       app_tables& tables) -> result<std::shared_ptr<const void>> {
        table_reader& reader = tables.table(table);
        auto settings = std::make_unique<Settings>();
        read(reader, *settings);
        if (auto r = reader.finish(); !r) return std::move(r).err();
        return std::shared_ptr<const void>(
            settings.release(),
            detail::typed_settings_deleter{
                &detail::settings_type_id<Settings>,
                [](const void* p) noexcept { delete static_cast<const Settings*>(p); }});
    };
    return schema;
}

}  // namespace preforkd
