#include "http/metrics.hpp"

#include <fmt/format.h>

#include <iterator>
#include <map>

namespace preforkd::http {

namespace {

constexpr worker_state live_states[] = {worker_state::starting, worker_state::idle,
                                        worker_state::busy, worker_state::retiring};

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, uint64_t value) {
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
}

void counter(std::string& out, std::string_view name, std::string_view help, uint64_t value) {
    family(out, name, "counter", help);
    sample(out, name, value);
}

void gauge(std::string& out, std::string_view name, std::string_view help, uint64_t value) {
    family(out, name, "gauge", help);
    sample(out, name, value);
}

}  // namespace

metrics_snapshot take_metrics(const scoreboard& board, int64_t now_ms) {
    metrics_snapshot m;
    const scoreboard_header& h = board.header();
    m.generation = h.generation.load(std::memory_order_relaxed);
    const int64_t started = h.started_ms.load(std::memory_order_relaxed);
    m.uptime_s = started > 0 && now_ms > started ? (now_ms - started) / 1000 : 0;
    m.supervisor = h.load_supervisor_counters();
    board.read_consistent([&] {
        m.workers.clear();
        m.retired = h.load_retired();
        const uint32_t used = board.used();
        for (uint32_t i = 0; i < used && i < board.capacity(); ++i) {
            const scoreboard_slot& s = board.slot(i);
            const worker_state st = s.get_state();
            if (st == worker_state::empty) continue;
            metrics_worker w;
            w.generation = s.generation.load(std::memory_order_relaxed);
            w.state = st;
            w.connections = s.connections.load(std::memory_order_relaxed);
            w.counters = s.load_counters();
            m.workers.push_back(w);
        }
    });
    return m;
}

void render_metrics(const metrics_snapshot& m, std::string& out) {
    traffic_counters total = m.retired;
    uint64_t connections = 0;
    // Generation -> live workers per state. A generation with workers gets a sample for every
    // state, zeros included, so that its series do not appear and vanish as workers move.
    std::map<uint32_t, std::array<uint64_t, 4>> by_generation;
    for (const metrics_worker& w : m.workers) {
        total += w.counters;
        connections += w.connections;
        auto& counts = by_generation[w.generation];
        for (size_t i = 0; i < std::size(live_states); ++i)
            if (w.state == live_states[i]) ++counts[i];
    }
    auto o = std::back_inserter(out);

    // Label values are state names and numbers: nothing to escape.
    family(out, "preforkd_workers", "gauge", "Live worker processes by state and generation.");
    for (const auto& [generation, counts] : by_generation)
        for (size_t i = 0; i < std::size(live_states); ++i)
            fmt::format_to(o, "preforkd_workers{{state=\"{}\",generation=\"{}\"}} {}\n",
                           to_string(live_states[i]), generation, counts[i]);
    gauge(out, "preforkd_open_connections", "Connections open in all workers.", connections);
    gauge(out, "preforkd_generation",
          "Current configuration generation (1 at start, +1 per reload).", m.generation);
    gauge(out, "preforkd_uptime_seconds", "Seconds since the supervisor started.",
          m.uptime_s > 0 ? static_cast<uint64_t>(m.uptime_s) : 0);

    counter(out, "preforkd_requests_total", "Requests answered.", total.requests);
    family(out, "preforkd_responses_total", "counter", "Responses by status class.");
    for (size_t i = 0; i < total.responses.size(); ++i)
        fmt::format_to(o, "preforkd_responses_total{{class=\"{}xx\"}} {}\n", i + 1,
                       total.responses[i]);
    counter(out, "preforkd_sent_bytes_total", "Bytes sent to clients, heads and bodies.",
            total.bytes);
    counter(out, "preforkd_accepted_connections_total", "Connections accepted.", total.accepted);
    counter(out, "preforkd_proxy_rejected_total",
            "Connections closed for a missing, malformed or untrusted PROXY protocol header.",
            total.proxy_rejected);
    counter(out, "preforkd_reloads_total", "Successful configuration reloads.",
            m.supervisor.reloads);
    counter(out, "preforkd_worker_crashes_total",
            "Workers that died by a signal or exited with an error unasked.",
            m.supervisor.worker_crashes);
    counter(out, "preforkd_fork_failures_total", "Failed attempts to fork a worker.",
            m.supervisor.fork_failures);
    counter(out, "preforkd_tls_handshakes_total", "TLS handshakes completed, resumed included.",
            total.tls_handshakes);
    counter(out, "preforkd_tls_resumed_total", "TLS handshakes that resumed a session.",
            total.tls_resumed);
    counter(out, "preforkd_tls_failures_total", "TLS handshakes that failed.", total.tls_failures);
}

}  // namespace preforkd::http
