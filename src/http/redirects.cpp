// https_redirect and the `redirects` rules: answered before the file is looked up.
#include <string>

#include "http/error_page.hpp"
#include "http/site_answers.hpp"
#include "http/site_rules.hpp"

namespace preforkd::http {

namespace {

// "example.org:8080" -> "example.org", "[::1]:8080" -> "[::1]" (the parser has checked the
// syntax: RFC 3986 uri-host [ ":" port ]).
std::string_view drop_port(std::string_view authority) noexcept {
    if (!authority.empty() && authority[0] == '[') {
        size_t close = authority.find(']');
        return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
    }
    return authority.substr(0, authority.find(':'));
}

}  // namespace

bool answer_https_redirect_now(exchange& x, const target_parts& parts) {
    const request_head& h = *x.head;
    std::string_view authority;
    if (h.form == target_form::absolute) {
        // RFC 9112 section 3.2.2: the target's authority wins over Host.
        std::string_view t = h.target.substr(h.target.find("://") + 3);
        authority = t.substr(0, t.find_first_of("/?"));
    } else if (h.has_host) {
        authority = h.host;
    }
    std::string_view host = drop_port(authority);
    if (host.empty()) return false;
    std::string location;
    location.reserve(32 + host.size() + parts.path.size() + parts.query.size());
    location.append("Location: https://");
    location.append(host);
    // The path as the client wrote it (still %-encoded, and already checked by
    // normalize_path): the https side resolves it exactly as this side would have.
    location.append(parts.path);
    if (!parts.query.empty()) {
        location.push_back('?');
        location.append(parts.query);
    }
    location.append("\r\n");
    answer_error(x, 308, x.keep, location);
    return true;
}

bool answer_redirect_rule_now(exchange& x, std::string_view query) {
    for (const redirect_rule& rule : x.rules->redirects) {
        glob_captures caps;
        if (!rule_matches(rule.match, x.path, &caps)) continue;
        std::string location;
        location.reserve(rule.to.size() + x.path.size() * 3 + query.size() + 16);
        location.append("Location: ");
        substitute(rule.to, caps, location);
        if (!query.empty()) {
            location.push_back(rule.to.find('?') == std::string::npos ? '?' : '&');
            location.append(query);
        }
        location.append("\r\n");
        answer_error(x, rule.status, x.keep, location);
        return true;
    }
    return false;
}

}  // namespace preforkd::http
