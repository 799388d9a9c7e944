#include "http/probes.hpp"

#include <preforkd/scoreboard.hpp>
#include <string_view>

#include "http/error_page.hpp"
#include "http/health.hpp"
#include "http/http_service.hpp"
#include "http/metrics.hpp"
#include "http/response.hpp"

namespace preforkd::http {
namespace {

// A small answer with a body held in `body`: head, then the body unless HEAD.
void answer(exchange& x, int status, std::string_view type, std::string_view body) {
    const size_t head_start = x.out.size();
    head_writer w(x.out);
    w.status(status, x.svc.dates());
    w.raw(type);
    w.raw("Cache-Control: no-store\r\n");
    w.header("Content-Length", body.size());
    w.end(x.keep, x.minor);
    x.status = status;
    x.head_bytes = x.out.size() - head_start;
    if (!x.head_only) {
        x.body_bytes = body.size();
        x.out.append(body);
    }
}

}  // namespace

void serve_health(exchange& x) {
    const bool draining =
        x.svc.ctx().board().header().draining.load(std::memory_order_relaxed) != 0;
    const health_answer a = health_check(draining);
    answer(x, a.status, "Content-Type: text/plain; charset=utf-8\r\n", a.body);
}

void serve_metrics(exchange& x) {
    if (!x.svc.settings().status_allowed(x.peer)) {
        answer_error(x, 403, x.keep);
        return;
    }
    worker_context& ctx = x.svc.ctx();
    std::string& body = x.svc.line_buffer();
    body.clear();
    render_metrics(take_metrics(ctx.board(), ctx.now_ms()), body);
    std::string type = "Content-Type: ";
    type.append(metrics_content_type);
    type.append("\r\n");
    answer(x, 200, type, body);
}

}  // namespace preforkd::http
