#include "runtime/status_view.hpp"

#include <fmt/format.h>

#include <array>
#include <iterator>

namespace preforkd {

std::string human_bytes(uint64_t n) {
    static constexpr std::array<const char*, 5> units{"B", "KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) return fmt::format("{} B", n);
    double v = static_cast<double>(n);
    size_t u = 0;
    while (v >= 1024 && u + 1 < units.size()) v /= 1024, ++u;
    return v < 10 ? fmt::format("{:.1f} {}", v, units[u]) : fmt::format("{:.0f} {}", v, units[u]);
}

std::string human_duration(int64_t ms) {
    if (ms < 0) ms = 0;
    const int64_t s = ms / 1000;
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
    return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string render_status_view(const scoreboard_header& header,
                               std::span<const scoreboard_slot> slots, int64_t now_ms,
                               int64_t wall_now_ms) {
    std::string out;
    auto o = std::back_inserter(out);
    const int64_t started = header.started_wall_ms.load(std::memory_order_relaxed);
    std::array<uint32_t, 5> by_state{};
    uint64_t connections = 0, requests = 0, bytes = 0, accepted = 0;
    std::string line;
    for (const scoreboard_slot& slot : slots) {
        const worker_state st = slot.get_state();
        if (st == worker_state::empty) continue;
        ++by_state[static_cast<size_t>(st) < by_state.size() ? static_cast<size_t>(st) : 0];
        connections += slot.connections.load(std::memory_order_relaxed);
        requests += slot.requests.load(std::memory_order_relaxed);
        bytes += slot.bytes.load(std::memory_order_relaxed);
        accepted += slot.accepted.load(std::memory_order_relaxed);
        line.push_back(state_char(st));
    }
    // Reaped workers' counts live on in the header's retired sums, so totals never go down.
    // A torn read against a fold only skews one redraw by one worker; --status can live with
    // that without taking the seqlock from outside the server.
    const traffic_counters retired = header.load_retired();
    requests += retired.requests;
    bytes += retired.bytes;
    accepted += retired.accepted;
    const uint32_t live = by_state[1] + by_state[2] + by_state[3] + by_state[4];
    fmt::format_to(o, "preforkd supervisor {}, generation {}, up {}\n",
                   header.supervisor_pid.load(std::memory_order_relaxed),
                   header.generation.load(std::memory_order_relaxed),
                   started > 0 ? human_duration(wall_now_ms - started) : std::string("?"));
    fmt::format_to(o,
                   "{} workers: {} starting, {} idle, {} busy, {} retiring; {} connections open\n",
                   live, by_state[1], by_state[2], by_state[3], by_state[4], connections);
    fmt::format_to(o, "{} requests, {} sent, {} connections accepted\n\n", requests,
                   human_bytes(bytes), accepted);
    fmt::format_to(o, "Scoreboard: {}\n", line);
    out.append("  S starting  _ idle  W busy  G retiring\n\n");
    if (live == 0) return out;
    fmt::format_to(o, "{:>5} {:>8} {:>4} {:<9} {:>6} {:>10} {:>10} {:>9} {:>6} {:>7}\n", "SLOT",
                   "PID", "GEN", "STATE", "CONNS", "REQUESTS", "SENT", "ACCEPTED", "BEAT", "AGE");
    for (size_t i = 0; i < slots.size(); ++i) {
        const scoreboard_slot& slot = slots[i];
        const worker_state st = slot.get_state();
        if (st == worker_state::empty) continue;
        const int64_t beat = slot.heartbeat_ms.load(std::memory_order_relaxed);
        const int64_t born = slot.started_ms.load(std::memory_order_relaxed);
        fmt::format_to(o, "{:>5} {:>8} {:>4} {:<9} {:>6} {:>10} {:>10} {:>9} {:>6} {:>7}\n", i,
                       slot.pid.load(std::memory_order_relaxed),
                       slot.generation.load(std::memory_order_relaxed), to_string(st),
                       slot.connections.load(std::memory_order_relaxed),
                       slot.requests.load(std::memory_order_relaxed),
                       human_bytes(slot.bytes.load(std::memory_order_relaxed)),
                       slot.accepted.load(std::memory_order_relaxed),
                       beat > 0 ? human_duration(now_ms - beat) : std::string("-"),
                       born > 0 ? human_duration(now_ms - born) : std::string("-"));
    }
    return out;
}

std::string render_status_view(const scoreboard& board, int64_t now_ms, int64_t wall_now_ms) {
    const uint32_t used = board.capacity() == 0 ? 0 : std::min(board.used(), board.capacity());
    std::span<const scoreboard_slot> slots;
    if (used > 0) slots = std::span<const scoreboard_slot>(&board.slot(0), used);
    return render_status_view(board.header(), slots, now_ms, wall_now_ms);
}

}  // namespace preforkd
