// `preforkd --status`: the running server's scoreboard as a terminal table, like
// `apachectl status`. It reads the scoreboard itself, not the HTTP status page, so it works for
// every application on the engine. This is the pure part: scoreboard contents in, text out;
// opening the running server's scoreboard from another process comes with phase 2.
#pragma once

#include <cstdint>
#include <preforkd/scoreboard.hpp>
#include <span>
#include <string>

namespace preforkd {

// `now_ms` is monotonic_ms() (heartbeats and worker starts are monotonic, which is one clock
// for every process on the machine), `wall_now_ms` the wall clock (the supervisor's start).
std::string render_status_view(const scoreboard_header& header,
                               std::span<const scoreboard_slot> slots, int64_t now_ms,
                               int64_t wall_now_ms);

// Slots [0, used()) of a scoreboard.
std::string render_status_view(const scoreboard& board, int64_t now_ms, int64_t wall_now_ms);

// "1.5 KiB", "12 MiB", "512 B": for people, not for parsing.
std::string human_bytes(uint64_t n);
// "45s", "3m07s", "2h05m", "3d04h".
std::string human_duration(int64_t ms);

}  // namespace preforkd
