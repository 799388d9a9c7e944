#include "http/status_page.hpp"

#include <fmt/format.h>

#include <iterator>
#include <preforkd/clock.hpp>

#include "http/error_page.hpp"
#include "http/http_service.hpp"
#include "http/response.hpp"
#include "http/status_html.hpp"

namespace preforkd::http {

namespace {

struct totals {
    uint64_t workers = 0, idle = 0, busy = 0;
    traffic_counters c;  // the live workers' counts plus the retired sums
};

// A tls worker's send path, " tls_path=ktls" style suffixes use it; "" without tls.
std::string_view path_name(uint8_t p) noexcept {
    return p == 2 ? "ktls" : p == 1 ? "userspace" : "";
}

totals sum(const status_snapshot& s) noexcept {
    totals t;
    t.c = s.retired;
    for (const worker_snapshot& w : s.workers) {
        ++t.workers;
        if (w.state == worker_state::idle) ++t.idle;
        if (w.state == worker_state::busy) ++t.busy;
        t.c.requests += w.requests;
        t.c.bytes += w.bytes;
        t.c.accepted += w.accepted;
        for (size_t i = 0; i < t.c.responses.size(); ++i) t.c.responses[i] += w.responses[i];
        t.c.tls_handshakes += w.tls_handshakes;
        t.c.tls_resumed += w.tls_resumed;
        t.c.tls_failures += w.tls_failures;
    }
    return t;
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
    s.supervisor = h.load_supervisor_counters();
    board.read_consistent([&] {
        s.workers.clear();
        s.retired = h.load_retired();
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
            for (size_t k = 0; k < w.responses.size(); ++k)
                w.responses[k] = slot.responses[k].load(std::memory_order_relaxed);
            s.workers.push_back(w);
        }
    });
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
                   "Reloads: {}\n"
                   "WorkerCrashes: {}\n"
                   "ForkFailures: {}\n"
                   "Scoreboard: ",
                   version, s.supervisor_pid, s.generation, s.uptime_s, t.c.requests,
                   t.c.bytes / 1024, t.c.bytes, t.workers, t.busy, t.idle, t.c.tls_handshakes,
                   t.c.tls_resumed, t.c.tls_failures, s.supervisor.reloads,
                   s.supervisor.worker_crashes, s.supervisor.fork_failures);
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
    // Totals include the reaped workers' counts: they never go down while the supervisor
    // lives (a reader computing rates can trust them). tls_* stay last, as before.
    const auto& r = t.c.responses;
    fmt::format_to(o,
                   " \"totals\": {{\"workers\": {}, \"idle\": {}, \"busy\": {}, \"requests\": {}, "
                   "\"bytes\": {}, \"accepted\": {}, \"responses\": {{\"1xx\": {}, \"2xx\": {}, "
                   "\"3xx\": {}, \"4xx\": {}, \"5xx\": {}}}, \"reloads\": {}, "
                   "\"worker_crashes\": {}, \"fork_failures\": {}, \"tls_handshakes\": {}, "
                   "\"tls_resumed\": {}, \"tls_failures\": {}}}}}\n",
                   t.workers, t.idle, t.busy, t.c.requests, t.c.bytes, t.c.accepted, r[0], r[1],
                   r[2], r[3], r[4], s.supervisor.reloads, s.supervisor.worker_crashes,
                   s.supervisor.fork_failures, t.c.tls_handshakes, t.c.tls_resumed,
                   t.c.tls_failures);
}

void serve_status(exchange& x, std::string_view query) {
    worker_context& ctx = x.svc.ctx();
    if (!x.svc.settings().status_allowed(x.peer)) {
        answer_error(x, 403, x.keep);
        return;
    }
    status_snapshot snap = take_snapshot(ctx.board(), ctx.now_ms(), wall_ms());
    // Accept only matters here: it is read from the head on this path alone, every line of
    // it as one list (RFC 9110 section 5.3).
    std::string& accept = x.scratch;
    accept.clear();
    if (x.head) combine_field_lines(x.head->bytes, "accept", accept);
    const status_format format = choose_status_format(query, accept);
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
    const char* type = "Content-Type: text/plain; charset=utf-8\r\n";
    switch (format) {
        case status_format::json:
            render_status_json(snap, body);
            type = "Content-Type: application/json\r\n";
            break;
        case status_format::html:
            render_status_html(snap, PREFORKD_VERSION, x.svc.settings().status_path, body);
            type = "Content-Type: text/html; charset=utf-8\r\n";
            break;
        case status_format::text:
            render_status_text(snap, PREFORKD_VERSION, body);
            break;
    }
    const size_t head_start = x.out.size();
    head_writer w(x.out);
    w.status(200, x.svc.dates());
    w.raw(type);
    w.raw("Cache-Control: no-store\r\n");
    // The same URL answers text or HTML by Accept: caches must key on it.
    w.raw("Vary: Accept\r\n");
    if (format == status_format::html) {
        w.raw("Content-Security-Policy: ");
        w.raw(status_html_csp);
        w.raw("\r\nX-Content-Type-Options: nosniff\r\n");
    }
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
