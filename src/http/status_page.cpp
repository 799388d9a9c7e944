#include "http/status_page.hpp"

#include <fmt/format.h>

#include <iterator>
#include <preforkd/clock.hpp>

#include "http/error_page.hpp"
#include "http/http_service.hpp"
#include "http/response.hpp"

namespace preforkd::http {

namespace {

bool query_has(std::string_view query, std::string_view word) noexcept {
    while (!query.empty()) {
        size_t amp = query.find('&');
        if (query.substr(0, amp) == word) return true;
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

struct totals {
    uint64_t workers = 0, idle = 0, busy = 0, requests = 0, bytes = 0;
    uint64_t tls_handshakes = 0, tls_resumed = 0, tls_failures = 0;
};

// A tls worker's send path, " tls_path=ktls" style suffixes use it; "" without tls.
std::string_view path_name(uint8_t p) noexcept {
    return p == 2 ? "ktls" : p == 1 ? "userspace" : "";
}

totals sum(const status_snapshot& s) noexcept {
    totals t;
    for (const worker_snapshot& w : s.workers) {
        ++t.workers;
        if (w.state == worker_state::idle) ++t.idle;
        if (w.state == worker_state::busy) ++t.busy;
        t.requests += w.requests;
        t.bytes += w.bytes;
        t.tls_handshakes += w.tls_handshakes;
        t.tls_resumed += w.tls_resumed;
        t.tls_failures += w.tls_failures;
    }
    return t;
}

// One character per live worker, like Apache's scoreboard line.
char state_char(worker_state s) noexcept {
    switch (s) {
        case worker_state::starting:
            return 'S';
        case worker_state::idle:
            return '_';
        case worker_state::busy:
            return 'W';
        case worker_state::retiring:
            return 'G';
        default:
            return '.';
    }
}

}  // namespace

status_snapshot take_snapshot(const scoreboard& board, int64_t now_ms, int64_t wall_now_ms) {
    status_snapshot s;
    const scoreboard_header& h = board.header();
    s.supervisor_pid = h.supervisor_pid.load(std::memory_order_relaxed);
    s.generation = h.generation.load(std::memory_order_relaxed);
    // Monotonic: a wall clock stepped by NTP or by hand moves no uptime. A supervisor from
    // before started_ms existed (an upgrade's old binary) has only the wall clock.
    const int64_t started = h.started_ms.load(std::memory_order_relaxed);
    const int64_t started_wall = h.started_wall_ms.load(std::memory_order_relaxed);
    if (started > 0)
        s.uptime_s = now_ms > started ? (now_ms - started) / 1000 : 0;
    else
        s.uptime_s = started_wall > 0 && wall_now_ms > started_wall
                         ? (wall_now_ms - started_wall) / 1000
                         : 0;
    const uint32_t used = board.used();
    for (uint32_t i = 0; i < used && i < board.capacity(); ++i) {
        const scoreboard_slot& slot = board.slot(i);
        worker_state st = slot.get_state();
        if (st == worker_state::empty) continue;
        worker_snapshot w;
        w.slot = i;
        w.pid = slot.pid.load(std::memory_order_relaxed);
        w.generation = slot.generation.load(std::memory_order_relaxed);
        w.state = st;
        w.connections = slot.connections.load(std::memory_order_relaxed);
        w.requests = slot.requests.load(std::memory_order_relaxed);
        w.bytes = slot.bytes.load(std::memory_order_relaxed);
        w.accepted = slot.accepted.load(std::memory_order_relaxed);
        int64_t beat = slot.heartbeat_ms.load(std::memory_order_relaxed);
        w.heartbeat_age_ms = beat > 0 && now_ms > beat ? now_ms - beat : 0;
        w.tls_handshakes = slot.tls_handshakes.load(std::memory_order_relaxed);
        w.tls_resumed = slot.tls_resumed.load(std::memory_order_relaxed);
        w.tls_failures = slot.tls_failures.load(std::memory_order_relaxed);
        w.tls_send_path = slot.tls_send_path.load(std::memory_order_relaxed);
        s.workers.push_back(w);
    }
    return s;
}

void render_status_text(const status_snapshot& s, std::string_view version, std::string& out) {
    totals t = sum(s);
    auto o = std::back_inserter(out);
    fmt::format_to(o,
                   "ServerVersion: preforkd/{}\n"
                   "SupervisorPID: {}\n"
                   "Generation: {}\n"
                   "Uptime: {}\n"
                   "Total Accesses: {}\n"
                   "Total kBytes: {}\n"
                   "Total Bytes: {}\n"
                   "Workers: {}\n"
                   "BusyWorkers: {}\n"
                   "IdleWorkers: {}\n"
                   "TLSHandshakes: {}\n"
                   "TLSResumed: {}\n"
                   "TLSFailures: {}\n"
                   "Scoreboard: ",
                   version, s.supervisor_pid, s.generation, s.uptime_s, t.requests, t.bytes / 1024,
                   t.bytes, t.workers, t.busy, t.idle, t.tls_handshakes, t.tls_resumed,
                   t.tls_failures);
    for (const worker_snapshot& w : s.workers) out.push_back(state_char(w.state));
    out.push_back('\n');
    for (const worker_snapshot& w : s.workers) {
        fmt::format_to(o,
                       "Worker: slot={} pid={} generation={} state={} connections={} "
                       "requests={} bytes={} accepted={} heartbeat_age_ms={}",
                       w.slot, w.pid, w.generation, to_string(w.state), w.connections, w.requests,
                       w.bytes, w.accepted, w.heartbeat_age_ms);
        if (w.tls_send_path != 0) fmt::format_to(o, " tls_path={}", path_name(w.tls_send_path));
        out.push_back('\n');
    }
    // Site names are checked host names ([a-z0-9._-], "*.", "[v6]"): nothing to escape.
    for (size_t i = 0; i < s.sites.size(); ++i)
        fmt::format_to(o, "Site: index={} name={} requests={}\n", i,
                       s.sites[i].name.empty() ? "-" : s.sites[i].name, s.sites[i].requests);
}

void render_status_json(const status_snapshot& s, std::string& out) {
    totals t = sum(s);
    auto o = std::back_inserter(out);
    fmt::format_to(o, "{{\"supervisor\": {{\"pid\": {}, \"generation\": {}, \"uptime_s\": {}}},\n",
                   s.supervisor_pid, s.generation, s.uptime_s);
    out.append(" \"workers\": [");
    bool first = true;
    for (const worker_snapshot& w : s.workers) {
        if (!first) out.append(",\n              ");
        first = false;
        // State names are fixed lower-case words: nothing to escape.
        fmt::format_to(o,
                       "{{\"slot\": {}, \"pid\": {}, \"generation\": {}, \"state\": \"{}\", "
                       "\"connections\": {}, \"requests\": {}, \"bytes\": {}, "
                       "\"accepted\": {}, \"heartbeat_age_ms\": {}",
                       w.slot, w.pid, w.generation, to_string(w.state), w.connections, w.requests,
                       w.bytes, w.accepted, w.heartbeat_age_ms);
        if (w.tls_send_path != 0)
            fmt::format_to(o, ", \"tls_path\": \"{}\"", path_name(w.tls_send_path));
        out.push_back('}');
    }
    out.append("],\n");
    if (!s.sites.empty()) {
        out.append(" \"sites\": [");
        for (size_t i = 0; i < s.sites.size(); ++i) {
            if (i > 0) out.append(",\n            ");
            fmt::format_to(o, "{{\"index\": {}, \"name\": \"{}\", \"requests\": {}}}", i,
                           s.sites[i].name, s.sites[i].requests);
        }
        out.append("],\n");
    }
    fmt::format_to(o,
                   " \"totals\": {{\"workers\": {}, \"idle\": {}, \"busy\": {}, \"requests\": {}, "
                   "\"bytes\": {}, \"tls_handshakes\": {}, \"tls_resumed\": {}, "
                   "\"tls_failures\": {}}}}}\n",
                   t.workers, t.idle, t.busy, t.requests, t.bytes, t.tls_handshakes, t.tls_resumed,
                   t.tls_failures);
}

void serve_status(exchange& x, std::string_view query) {
    worker_context& ctx = x.svc.ctx();
    if (!x.svc.settings().status_allowed(x.peer)) {
        answer_error(x, 403, x.keep);
        return;
    }
    status_snapshot snap = take_snapshot(ctx.board(), ctx.now_ms(), wall_ms());
    const http_settings& settings = x.svc.settings();
    if (settings.sites_configured && settings.site_requests) {
        for (size_t i = 0; i < settings.sites.size(); ++i) {
            const auto& names = settings.sites[i].names;
            snap.sites.push_back({names.empty() ? std::string() : names.front(),
                                  settings.site_requests->requests(i)});
        }
    }
    std::string& body = x.svc.line_buffer();
    body.clear();
    const bool json = query_has(query, "json");
    if (json)
        render_status_json(snap, body);
    else
        render_status_text(snap, PREFORKD_VERSION, body);
    const size_t head_start = x.out.size();
    head_writer w(x.out);
    w.status(200, x.svc.dates());
    w.raw(json ? "Content-Type: application/json\r\n"
               : "Content-Type: text/plain; charset=utf-8\r\n");
    w.raw("Cache-Control: no-store\r\n");
    w.header("Content-Length", body.size());
    w.end(x.keep, x.minor);
    x.status = 200;
    x.head_bytes = x.out.size() - head_start;
    if (!x.head_only) {
        x.body_bytes = body.size();
        x.out.append(body);
    }
}

}  // namespace preforkd::http
