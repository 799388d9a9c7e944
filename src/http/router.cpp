// Request routing: one small step between the session (which parsed the head) and the
// handlers (which answer). Checks that hold for every handler come first (method, transfer
// coding, body size, path syntax), then the path picks the handler.
//
// Adding a handler (health, metrics, a site's own root...): write it in its own file as
// `void serve_x(exchange& x, ...)` filling the answer as error_page.cpp, status_page.cpp and
// file_handler.cpp do, and add one test on the normalised path (or on the Host, for sites)
// below, before the static file handler, which takes every path left over.
#include "http/router.hpp"

#include <ctime>

#include "http/error_page.hpp"
#include "http/file_handler.hpp"
#include "http/http_service.hpp"
#include "http/path.hpp"
#include "http/probes.hpp"
#include "http/site.hpp"
#include "http/site_answers.hpp"
#include "http/status_page.hpp"

namespace preforkd::http {

void route(exchange& x, std::string& path) {
    const request_head& h = *x.head;
    x.svc.dates().update(::time(nullptr));
    // The site first: every answer below, errors included, is its answer (and its log line).
    // The handlers take its rules and root from here, so choosing a site is this one place.
    x.site_index = x.svc.find_site(h);
    x.vhost = &x.svc.sites()[x.site_index];
    x.rules = &x.svc.rules(x.site_index);
    x.root_fd = x.svc.root_fd(x.site_index);
    x.svc.count_site(x.site_index);

    if (h.method != method_t::get && h.method != method_t::head) {
        // RFC 9110 section 15.5.6 / 15.6.2: known but not allowed here, or unknown. The
        // body, if any, is not read: the connection closes after the answer.
        x.head_only = false;
        answer_error(x, h.method == method_t::other ? 501 : 405, false,
                     h.method == method_t::other ? "" : "Allow: GET, HEAD\r\n");
        return;
    }
    if (h.has_transfer_encoding) {
        // A chunked body on GET/HEAD is not decoded: ask for a Content-Length instead
        // (411), or say the coding is not implemented (501), and close.
        answer_error(x, h.transfer_encoding_chunked_only ? 411 : 501, false);
        return;
    }
    if (h.content_length > max_drained_body) {
        answer_error(x, 413, false);
        return;
    }
    // A small body on GET/HEAD has no meaning but must be read past, or its bytes would be
    // parsed as the next request.
    x.drain = h.content_length;

    target_parts parts = split_target(h.target, h.form);
    switch (normalize_path(parts.path, x.svc.serve_hidden(x.site_index), path)) {
        case path_result::bad_request:
            answer_error(x, 400, false);
            return;
        case path_result::hidden:
            answer_error(x, 404, x.keep);
            return;
        case path_result::ok:
            break;
    }
    x.path = path;
    if (x.svc.status_enabled() && path == x.svc.status_key()) {
        serve_status(x, parts.query);
        return;
    }
    if (!x.svc.health_key().empty() && path == x.svc.health_key()) {
        serve_health(x);
        return;
    }
    if (!x.svc.metrics_key().empty() && path == x.svc.metrics_key()) {
        serve_metrics(x);
        return;
    }
    // After the probes (a load balancer checks them over plain HTTP), before the file.
    if (answer_https_redirect(x, parts)) return;
    if (answer_redirect_rule(x, parts.query)) return;
    serve_path(x, path, parts.query);
}

}  // namespace preforkd::http
