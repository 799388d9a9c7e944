#include "http/error_page.hpp"

#include <ctime>

#include "http/http_service.hpp"
#include "http/response.hpp"
#include "http/site_answers.hpp"
#include "http/site_rules.hpp"

namespace preforkd::http {

namespace {
constexpr std::string_view html_type = "Content-Type: text/html; charset=utf-8\r\n";
}

void answer_error(exchange& x, int status, bool keep, std::string_view extra_lines) {
    // The site's own page for this status, when it has one (error_pages).
    if (status >= 400 && x.rules && !x.rules->error_pages.empty() &&
        answer_error_page(x, status, keep, extra_lines))
        return;
    date_cache& dates = x.svc.dates();
    dates.update(::time(nullptr));
    const size_t head_start = x.out.size();
    head_writer w(x.out);
    w.status(status, dates);
    w.raw(html_type);
    w.header("Content-Length", error_body_length(status));
    w.raw(extra_lines);
    w.end(keep, x.minor);
    x.head_bytes = x.out.size() - head_start;
    x.body_bytes = x.head_only ? 0 : append_error_body(x.out, status);
    x.status = status;
    x.keep = keep;
    // 403 and 404 close only for the usual reasons (HTTP/1.0, Connection: close), with the
    // request read whole; other errors may leave the client still sending.
    x.linger = !keep && status >= 400 && status != 404 && status != 403;
}

}  // namespace preforkd::http
