// Where a loaded configuration's keys were in its file: what errors found after the load
// (the user database, the folders the logs and the pid file go to, a bind) need to name
// `file:line: key` like load errors do. Private to the engine; config carries it opaquely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <preforkd/config.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::detail {

struct config_lines {
    // "server.user" -> its line (its table's line when the key is absent, 1 without one).
    std::map<std::string, uint32_t, std::less<>> keys;
    // The line of each server.listen entry, in order.
    std::vector<uint32_t> listen;
};

// The line of `key` ("server.user") in the file `cfg` came from; 1 when unknown.
inline uint32_t line_of_key(const config& cfg, std::string_view key) {
    if (!cfg.lines) return 1;
    auto it = cfg.lines->keys.find(key);
    return it == cfg.lines->keys.end() ? 1 : it->second;
}

// "file:line: key" for an error about `key` of `cfg`.
inline std::string key_site(const config& cfg, std::string_view key) {
    return cfg.path.string() + ':' + std::to_string(line_of_key(cfg, key)) + ": " +
           std::string(key);
}

// "file:line: server.listen[i]" for an error about the i-th listen entry (0-based).
inline std::string listen_site(const config& cfg, size_t i) {
    uint32_t line = line_of_key(cfg, "server.listen");
    if (cfg.lines && i < cfg.lines->listen.size()) line = cfg.lines->listen[i];
    return cfg.path.string() + ':' + std::to_string(line) + ": server.listen[" + std::to_string(i) +
           ']';
}

}  // namespace preforkd::detail
