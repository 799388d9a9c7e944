#include "core/start_check.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <preforkd/detail/text.hpp>
#include <string>

#include "core/config_lines.hpp"

namespace preforkd {
namespace {

namespace fs = std::filesystem;

// stat(2) of `p`: nullopt when nothing is there (ENOENT, or a component that is not a folder).
std::optional<struct stat> stat_of(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return std::nullopt;
    return st;
}

std::string quoted(const std::string& s) { return '"' + detail::hex_escaped(s) + '"'; }

// A file that start-up opens (or binds) but whose folder it does not create.
result<void> check_file_in_existing_folder(const std::string& where, const std::string& path,
                                           const char* what) {
    fs::path p(path);
    if (auto st = stat_of(p); st && S_ISDIR(st->st_mode))
        return error(where + ' ' + quoted(path) + " is a folder, not a " + what);
    fs::path dir = p.parent_path();
    auto st = stat_of(dir);
    if (!st)
        return error(where + ' ' + quoted(path) + ": folder " + quoted(dir.string()) +
                     " does not exist (start-up does not create it)");
    if (!S_ISDIR(st->st_mode))
        return error(where + ' ' + quoted(path) + ": " + quoted(dir.string()) + " is not a folder");
    return {};
}

result<void> check_log(const config& cfg, const char* key, const std::string& path) {
    if (path == "stderr" || path == "off") return {};
    return check_file_in_existing_folder(detail::key_site(cfg, key), path, "log file");
}

// Start-up (and a reload moving it) creates the pid file's missing folders: only something
// in the way of that is an error.
result<void> check_pid_file(const config& cfg) {
    const std::string& path = cfg.server.pid_file;
    if (path.empty()) return {};
    const std::string where = detail::key_site(cfg, "server.pid_file");
    fs::path p(path);
    if (auto st = stat_of(p); st && S_ISDIR(st->st_mode))
        return error(where + ' ' + quoted(path) + " is a folder, not a file");
    for (fs::path dir = p.parent_path(); !dir.empty(); dir = dir.parent_path()) {
        if (auto st = stat_of(dir)) {
            if (!S_ISDIR(st->st_mode))
                return error(where + ' ' + quoted(path) + ": " + quoted(dir.string()) +
                             " is not a folder");
            break;
        }
        if (dir == dir.parent_path()) break;
    }
    return {};
}

result<void> check_unix_listener(const config& cfg, size_t i) {
    const listen_address& a = cfg.server.listen[i];
    const std::string where = detail::listen_site(cfg, i) + ' ' + quoted(a.to_string());
    fs::path p(a.path);
    if (auto st = stat_of(p); st && !S_ISSOCK(st->st_mode))
        return error(where + ": " + quoted(a.path) + " exists and is not a socket");
    auto dir = stat_of(p.parent_path());
    if (!dir || !S_ISDIR(dir->st_mode))
        return error(where + ": folder " + quoted(p.parent_path().string()) +
                     " does not exist (start-up does not create it)");
    return {};
}

}  // namespace

result<void> check_start_paths(const config& cfg) {
    for (size_t i = 0; i < cfg.server.listen.size(); ++i) {
        if (cfg.server.listen[i].family != listen_address::family_t::unix_path) continue;
        if (auto r = check_unix_listener(cfg, i); !r) return r;
    }
    if (auto r = check_pid_file(cfg); !r) return r;
    if (auto r = check_log(cfg, "log.error", cfg.log.error); !r) return r;
    return check_log(cfg, "log.access", cfg.log.access);
}

}  // namespace preforkd
