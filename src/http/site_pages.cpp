// Rule headers and error pages: what site rules add to answers the file handler makes.
#include <array>
#include <ctime>
#include <memory>

#include "http/http_service.hpp"
#include "http/response.hpp"
#include "http/site_answers.hpp"
#include "http/site_rules.hpp"
#include "http/static_file.hpp"

namespace preforkd::http {

namespace {

bool same_name(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        auto la = static_cast<unsigned char>(a[i]);
        auto lb = static_cast<unsigned char>(b[i]);
        if (la >= 'A' && la <= 'Z') la = static_cast<unsigned char>(la + 32);
        if (lb >= 'A' && lb <= 'Z') lb = static_cast<unsigned char>(lb + 32);
        if (la != lb) return false;
    }
    return true;
}

}  // namespace

void append_rule_headers_now(exchange& x) {
    // Distinct names over all rules are at most max_rule_headers (checked at load): the
    // merge needs no allocation.
    using entry = std::pair<std::string, std::string>;
    std::array<const entry*, max_rule_headers> chosen{};
    size_t n = 0;
    for (const header_rule& rule : x.rules->headers) {
        if (!rule_matches(rule.match, x.path)) continue;
        for (const entry& kv : rule.set) {
            size_t i = 0;
            while (i < n && !same_name(chosen[i]->first, kv.first)) ++i;
            if (i < n) {
                chosen[i] = &kv;
            } else if (n < chosen.size()) {
                chosen[n++] = &kv;
            }
        }
    }
    for (size_t i = 0; i < n; ++i) {
        if (chosen[i]->second.empty()) continue;
        x.out.append(chosen[i]->first);
        x.out.append(": ");
        x.out.append(chosen[i]->second);
        x.out.append("\r\n");
    }
}

bool answer_error_page(exchange& x, int status, bool keep, std::string_view extra_lines) {
    const error_page* page = x.rules ? x.rules->page_for(status) : nullptr;
    if (!page) return false;
    // A copy: the cache may drop the entry at its next lookup, and the body may be sent
    // with sendfile long after this returns.
    std::shared_ptr<file_entry> e =
        x.svc.cache().lookup(x.site_index, page->key, x.svc.ctx().now_ms() / 1000);
    if (e->kind != lookup_kind::file) return false;  // a missing page: the built-in one

    date_cache& dates = x.svc.dates();
    dates.update(::time(nullptr));
    const size_t head_start = x.out.size();
    head_writer w(x.out);
    w.status(status, dates);
    // The page's type only: its ETag and Last-Modified would describe the page, not the
    // answer to this request, and no range of an error is served.
    const std::string_view all_lines = e->type_lines;
    const std::string_view type_line = all_lines.substr(0, all_lines.find("\r\n") + 2);
    w.raw(type_line);
    w.raw(e->length_line);
    w.raw(extra_lines);
    append_rule_headers(x);
    w.end(keep, x.minor);
    x.head_bytes = x.out.size() - head_start;
    x.status = status;
    x.keep = keep;
    x.linger = !keep && status != 404 && status != 403;  // as answer_error
    if (x.head_only) {
        x.body_bytes = 0;
        return true;
    }
    x.body_bytes = e->size;
    if (e->in_memory) {
        x.out.append(e->body);
    } else if (e->size > 0) {
        x.file = std::move(e);
        x.file_offset = 0;
    }
    return true;
}

}  // namespace preforkd::http
