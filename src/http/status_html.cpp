#include "http/status_html.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <iterator>
#include <map>
#include <preforkd/detail/text.hpp>

namespace preforkd::http {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths; -1 if malformed.
int parse_qvalue(std::string_view v) noexcept {
    if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
    int q = (v[0] - '0') * 1000;
    if (v.size() == 1) return q;
    if (v[1] != '.' || v.size() > 5) return -1;
    int scale = 100;
    for (char c : v.substr(2)) {
        if (c < '0' || c > '9') return -1;
        q += (c - '0') * scale;
        scale /= 10;
    }
    return q > 1000 ? -1 : q;
}

bool query_key(std::string_view query, std::string_view key) noexcept {
    while (!query.empty()) {
        const size_t amp = query.find('&');
        std::string_view part = query.substr(0, amp);
        part = part.substr(0, part.find('='));
        if (part == key) return true;
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

struct state_style {
    worker_state state;
    const char* css;
};

// Cells carry the Apache letters (state_char), so that people who know "_W." read it at once.
constexpr std::array<state_style, 4> styles{{{worker_state::starting, "starting"},
                                             {worker_state::idle, "idle"},
                                             {worker_state::busy, "busy"},
                                             {worker_state::retiring, "retiring"}}};

const state_style& style_of(worker_state s) noexcept {
    for (const state_style& st : styles)
        if (st.state == s) return st;
    return styles[0];
}

constexpr std::string_view page_head = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>preforkd status</title>
<style>)";

// The texts of the one <style> and the one <script> element: the Content-Security-Policy
// allows exactly these by their SHA-256 (status_html_csp), so an edit here must update it
// (status_html_test says the new value).
constexpr std::string_view page_style = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em}
.grid{display:flex;flex-wrap:wrap;gap:3px;margin:1em 0;max-width:60em}
.cell,.key{width:1.6em;height:1.6em;display:inline-flex;align-items:center;justify-content:center;
border-radius:3px;font:bold 12px monospace;color:#fff}
.starting{background:#6c8ebf}.idle{background:#82b366}.busy{background:#d79b00}
.retiring{background:#9673a6}
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;
text-align:right}th:first-child,td:first-child{text-align:left}
.rates{font-size:1.1em}.key{width:1.2em;height:1.2em;vertical-align:middle}
)";

// Polls ?json each second; requests/s and bytes/s over the samples of the last minute. A
// total that goes down (a worker's slot reused, a new supervisor) restarts the window.
constexpr std::string_view page_script = R"(
(function(){
var url=document.body.getAttribute('data-json'),samples=[],polls=0;
var glyph={starting:'S',idle:'_',busy:'W',retiring:'G'};
function rate(v){return v<10?v.toFixed(1):Math.round(v).toString();}
function bytes(v){var u=['B','KiB','MiB','GiB'],i=0;while(v>=1024&&i<3){v/=1024;i++;}
return rate(v)+' '+u[i];}
function draw(j){
document.body.setAttribute('data-polls',++polls);
var g=document.getElementById('grid');g.textContent='';
var gens={};
j.workers.forEach(function(w){
var c=document.createElement('span');c.className='cell '+w.state;
c.textContent=glyph[w.state]||'?';
c.title='slot '+w.slot+', pid '+w.pid+', generation '+w.generation+', '+w.state+', '+
w.connections+' connections, '+w.requests+' requests';
g.appendChild(c);
var n=gens[w.generation]||(gens[w.generation]={starting:0,idle:0,busy:0,retiring:0});
n[w.state]=(n[w.state]||0)+1;});
var t=document.getElementById('gens-body');t.textContent='';
Object.keys(gens).sort(function(a,b){return b-a;}).forEach(function(k){
var r=document.createElement('tr'),n=gens[k],total=0;
[k,n.starting,n.idle,n.busy,n.retiring].forEach(function(v,i){
var d=document.createElement('td');d.textContent=v;if(i)total+=v;r.appendChild(d);});
var d=document.createElement('td');d.textContent=total;r.appendChild(d);t.appendChild(r);});
document.getElementById('summary').textContent='supervisor '+j.supervisor.pid+
', generation '+j.supervisor.generation+', up '+j.supervisor.uptime_s+' s, '+
j.totals.workers+' workers';
var now=Date.now(),last=samples[samples.length-1];
if(last&&(j.totals.requests<last.r||j.totals.bytes<last.b))samples=[];
samples.push({t:now,r:j.totals.requests,b:j.totals.bytes});
while(samples.length>1&&now-samples[0].t>60000)samples.shift();
if(samples.length>1){var a=samples[0],z=samples[samples.length-1],s=(z.t-a.t)/1000;
document.getElementById('rps').textContent=rate((z.r-a.r)/s);
document.getElementById('bps').textContent=bytes((z.b-a.b)/s);}}
function poll(){fetch(url,{cache:'no-store'}).then(function(r){return r.json();})
.then(draw).catch(function(){}).then(function(){setTimeout(poll,1000);});}
poll();})();
)";

}  // namespace

std::string_view status_html_style() noexcept { return page_style; }
std::string_view status_html_script() noexcept { return page_script; }

int accept_quality(std::string_view accept, std::string_view media_type) {
    if (preforkd::detail::trim_ows(accept).empty()) return 1000;
    const size_t slash = media_type.find('/');
    const std::string_view type = media_type.substr(0, slash);
    int best_q = -1, best_rank = -1;  // rank: 2 type/subtype, 1 type/*, 0 */*
    while (!accept.empty()) {
        const size_t comma = accept.find(',');
        std::string_view element = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
        const size_t semi = element.find(';');
        const std::string_view range = preforkd::detail::trim_ows(element.substr(0, semi));
        int q = 1000;
        std::string_view params = semi == std::string_view::npos ? "" : element.substr(semi + 1);
        while (!params.empty()) {
            const size_t next = params.find(';');
            const std::string_view p = preforkd::detail::trim_ows(params.substr(0, next));
            params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
            if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                q = parse_qvalue(p.substr(2));
                break;  // parameters after the weight are accept-ext: ignored
            }
        }
        if (q < 0 || range.empty()) continue;  // malformed element: ignored, not fatal
        int rank = -1;
        if (iequals(range, media_type))
            rank = 2;
        else if (range.size() == type.size() + 2 && iequals(range.substr(0, type.size()), type) &&
                 range.substr(type.size()) == "/*")
            rank = 1;
        else if (range == "*/*")
            rank = 0;
        if (rank > best_rank) best_rank = rank, best_q = q;
    }
    return best_q;
}

bool prefers_html(std::string_view accept) {
    const int html = accept_quality(accept, "text/html");
    return html > 0 && html > accept_quality(accept, "text/plain");
}

status_format choose_status_format(std::string_view query, std::string_view accept) {
    if (query_key(query, "json")) return status_format::json;
    if (query_key(query, "auto")) return status_format::text;
    if (query_key(query, "html")) return status_format::html;
    return prefers_html(accept) ? status_format::html : status_format::text;
}

void render_status_html(const status_snapshot& s, std::string_view version,
                        std::string_view status_path, std::string& out) {
    auto o = std::back_inserter(out);
    // Reaped workers count too, as in the text and JSON totals.
    uint64_t requests = s.retired.requests, bytes = s.retired.bytes;
    std::map<uint32_t, std::array<uint64_t, 4>, std::greater<>> gens;
    for (const worker_snapshot& w : s.workers) {
        requests += w.requests;
        bytes += w.bytes;
        auto& n = gens[w.generation];
        for (size_t i = 0; i < styles.size(); ++i)
            if (styles[i].state == w.state) ++n[i];
    }
    out.append(page_head);
    out.append(page_style);
    out.append("</style></head>\n<body data-json=\"");
    preforkd::detail::append_html_escaped(out, status_path);
    out.append("?json\">\n<h1>preforkd/");
    preforkd::detail::append_html_escaped(out, version);
    fmt::format_to(
        o,
        "</h1>\n<p id=\"summary\">supervisor {}, generation {}, up {} s, {} workers</p>\n"
        "<p class=\"rates\">last minute: <b id=\"rps\">&ndash;</b> requests/s, "
        "<b id=\"bps\">&ndash;</b>/s sent (total {} requests, {} bytes)</p>\n"
        "<div id=\"grid\" class=\"grid\">",
        s.supervisor_pid, s.generation, s.uptime_s, s.workers.size(), requests, bytes);
    for (const worker_snapshot& w : s.workers) {
        const state_style& st = style_of(w.state);
        fmt::format_to(o,
                       "<span class=\"cell {}\" title=\"slot {}, pid {}, generation {}, {}, {} "
                       "connections, {} requests\">{}</span>",
                       st.css, w.slot, w.pid, w.generation, st.css, w.connections, w.requests,
                       state_char(st.state));
    }
    out.append("</div>\n<p class=\"legend\">");
    for (const state_style& st : styles)
        fmt::format_to(o, "<span class=\"key {}\">{}</span> {} ", st.css, state_char(st.state),
                       st.css);
    out.append(
        "</p>\n<table><thead><tr><th>generation</th><th>starting</th><th>idle</th>"
        "<th>busy</th><th>retiring</th><th>total</th></tr></thead>\n<tbody id=\"gens-body\">");
    for (const auto& [generation, n] : gens)
        fmt::format_to(
            o, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            generation, n[0], n[1], n[2], n[3], n[0] + n[1] + n[2] + n[3]);
    out.append("</tbody></table>\n");
    out.append("<script>");
    out.append(page_script);
    out.append("</script>\n</body></html>\n");
}

}  // namespace preforkd::http
