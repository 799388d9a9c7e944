#include "http/file_handler.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <preforkd/detail/text.hpp>

#include "http/encoding_representation.hpp"
#include "http/error_page.hpp"
#include "http/glob.hpp"
#include "http/http_service.hpp"
#include "http/response.hpp"
#include "http/site_answers.hpp"
#include "http/site_rules.hpp"
#include "http/static_file.hpp"

namespace preforkd::http {

namespace {

bool not_modified(exchange& x, const file_entry& e) {
    const request_head& h = *x.head;
    // RFC 9110 section 13.2.2: If-None-Match first; If-Modified-Since only without it.
    std::string_view if_none_match = h.if_none_match;
    if (h.if_none_match_repeated) {
        // Rare: several lines are one list (RFC 9110 section 5.3), built in a string of
        // the session's rather than in the parser, which allocates nothing.
        combine_field_lines(h.bytes, "if-none-match", x.scratch);
        if_none_match = x.scratch;
    }
    if (!if_none_match.empty()) return if_none_match_matches(if_none_match, e.etag);
    if (!h.if_modified_since.empty() && !h.if_modified_since_repeated) {
        // A repeated If-Modified-Since is a list, never a valid HTTP-date: ignored
        // (RFC 9110 section 13.1.3).
        time_t since = 0;
        return parse_http_date(h.if_modified_since, since) && e.mtime_s <= since;
    }
    return false;
}

void serve_file(exchange& x, const std::shared_ptr<file_entry>& e) {
    const request_head& h = *x.head;
    date_cache& dates = x.svc.dates();
    const size_t head_start = x.out.size();
    head_writer w(x.out);

    if (not_modified(x, *e)) {
        w.status(304, dates);
        w.raw(e->validator_lines);
        append_rule_headers(x);
        w.end(x.keep, x.minor);
        x.status = 304;
        x.head_bytes = x.out.size() - head_start;
        return;
    }

    byte_range range;
    // Range is defined for GET only (RFC 9110 section 14.2); a repeated one is ignored, and
    // so is one whose If-Range is repeated: a list of validators is no validator, and the
    // whole file is always a correct answer.
    if (h.method == method_t::get && !h.range.empty() && !h.range_repeated &&
        !h.if_range_repeated &&
        (h.if_range.empty() ||
         if_range_matches(h.if_range, e->etag, static_cast<time_t>(e->mtime_s))))
        range = evaluate_range(h.range, e->size);

    if (range.kind == range_kind::unsatisfiable) {
        char cr[48];
        auto r = fmt::format_to_n(cr, sizeof cr, "Content-Range: bytes */{}\r\n", e->size);
        answer_error(x, 416, x.keep, std::string_view(cr, r.size));
        return;
    }
    uint64_t first = 0;
    uint64_t length = e->size;
    if (range.kind == range_kind::partial) {
        first = range.first;
        length = range.length;
        w.status(206, dates);
        char cr[96];
        auto r = fmt::format_to_n(cr, sizeof cr, "Content-Range: bytes {}-{}/{}\r\n", first,
                                  first + length - 1, e->size);
        w.raw(std::string_view(cr, r.size));
        w.header("Content-Length", length);
        w.raw(e->type_lines);
    } else {
        x.out.append(ok_head(*e, dates));
    }
    append_rule_headers(x);
    w.end(x.keep, x.minor);
    x.head_bytes = x.out.size() - head_start;
    x.status = range.kind == range_kind::partial ? 206 : 200;
    if (x.head_only) return;
    x.body_bytes = length;
    if (e->in_memory) {
        x.out.append(e->body, static_cast<size_t>(first), static_cast<size_t>(length));
    } else if (length > 0) {
        x.file = e;  // kept alive while it is sent, even if the cache drops it
        x.file_offset = first;
    }
}

}  // namespace

void serve_path(exchange& x, const std::string& path, std::string_view query) {
    worker_context& ctx = x.svc.ctx();
    const std::shared_ptr<file_entry>& e =
        x.svc.cache().lookup(x.site_index, path, ctx.now_ms() / 1000);
    switch (e->kind) {
        case lookup_kind::file:
            // Only a file with other representations pays for reading Accept-Encoding.
            serve_file(x, e->vary ? choose_representation(x, e) : e);
            return;
        case lookup_kind::redirect: {
            // Built from the normalised path, never from the raw one: "//host" collapsed to
            // "host" must not come back as a scheme-relative "//host/" (an open redirect).
            std::string location;
            location.reserve(path.size() * 3 + query.size() + 16);
            location.append("Location: /");
            append_encoded_path(location, path);
            location.push_back('/');
            if (!query.empty()) {
                location.push_back('?');
                location.append(query);
            }
            location.append("\r\n");
            answer_error(x, 301, x.keep, location);
            return;
        }
        case lookup_kind::forbidden:
            if (e->folder && x.rules && x.rules->autoindex && answer_listing(x)) return;
            answer_error(x, 403, x.keep);
            return;
        case lookup_kind::not_found:
            // fallback answers a miss only: not a refused symlink, not an escape, not a FIFO.
            if (x.rules && !x.rules->fallback_key.empty() &&
                (e->err == ENOENT || e->err == ENOTDIR)) {
                // A copy: serving it may outlive the next cache lookup.
                std::shared_ptr<file_entry> f =
                    x.svc.cache().lookup(x.site_index, x.rules->fallback_key, ctx.now_ms() / 1000);
                if (f->kind == lookup_kind::file) {
                    serve_file(x, f);
                    return;
                }
            }
            answer_error(x, 404, x.keep);
            return;
        case lookup_kind::error:
            // The decoded path is the client's bytes: escaped, so that "%0a" and "%20" do
            // not look alike and the line says exactly which bytes were asked for.
            if (ctx.log().enabled(log_level::error))
                ctx.log().error(
                    "http: {}: {}",
                    path.empty() ? std::string("/") : preforkd::detail::hex_escaped(path),
                    std::strerror(e->err));
            answer_error(x, 500, x.keep);
            return;
    }
}

}  // namespace preforkd::http
