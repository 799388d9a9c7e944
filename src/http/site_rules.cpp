// Reading and checking site rules: every problem is a `file:line: table.key` error at -t
// and at reload, so that nothing is found wrong while serving.
#include "http/site_rules.hpp"

#include <algorithm>
#include <charconv>
#include <preforkd/detail/text.hpp>

#include "http/path.hpp"
#include "http/request_parser.hpp"

namespace preforkd::http {

namespace {

using preforkd::detail::hex_escaped;

std::string in_quotes(std::string_view s) { return '"' + hex_escaped(s, "\"") + '"'; }

// A path under the site's root, as a request would name it: "/404.html". Its normalised form
// goes to `key`. "" when it is one, else why not.
std::string root_path_problem(const std::string& path, std::string& key) {
    if (path.empty() || path[0] != '/') return "must be a path starting with \"/\"";
    if (path.find_first_of("?#%") != std::string::npos)
        return "must be a plain path (no query, no %-escapes)";
    for (char c : path)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "holds a control byte";
    // Any ".." is refused, not only one that climbs above the root: what a rule names
    // should be readable at a glance.
    std::string_view rest(path);
    while (!rest.empty()) {
        size_t slash = rest.find('/');
        if (rest.substr(0, slash) == "..") return "must stay under the root (no \"..\")";
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    if (normalize_path(path, true, key) != path_result::ok)
        return "must stay under the root (no \"..\")";
    if (key.empty() || key.back() == '/') return "must name a file, not a folder";
    return {};
}

std::vector<error_page> read_error_pages(table_reader& r) {
    std::vector<error_page> out;
    table_reader* t = r.sub_table("error_pages");
    if (!t) return out;
    for (const std::string& k : t->keys()) {
        error_page page;
        std::string value = t->string(k, "");
        auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), page.status);
        if (ec != std::errc() || end != k.data() + k.size() || page.status < 400 ||
            page.status > 599) {
            t->fail(k, "is not an error status (400 to 599)");
            return out;
        }
        if (std::string why = root_path_problem(value, page.key); !why.empty()) {
            t->fail(k, in_quotes(value) + ' ' + why);
            return out;
        }
        page.path = std::move(value);
        out.push_back(std::move(page));
    }
    std::sort(out.begin(), out.end(),
              [](const error_page& a, const error_page& b) { return a.status < b.status; });
    return out;
}

std::vector<header_rule> read_headers(table_reader& r) {
    std::vector<header_rule> out;
    std::vector<std::string> names;  // distinct, lower case: bounds the per-request merge
    for (table_reader* item : r.table_array("headers")) {
        header_rule rule;
        rule.match = item->string("match", "");
        if (std::string why = glob_problem(rule.match); !why.empty()) {
            item->fail("match", in_quotes(rule.match) + ' ' + why);
            return out;
        }
        table_reader* set = item->sub_table("set");
        if (!set) {
            item->fail("set", "is missing (set = { \"Name\" = \"value\" })");
            return out;
        }
        for (const std::string& name : set->keys()) {
            std::string value = set->string(name, "");
            if (std::string why = header_problem(name, value); !why.empty()) {
                set->fail(name, why);
                return out;
            }
            std::string lower(name);
            for (char& c : lower)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (std::find(names.begin(), names.end(), lower) == names.end()) {
                if (names.size() == max_rule_headers) {
                    set->fail(name, "is one header name too many (at most " +
                                        std::to_string(max_rule_headers) + " over all rules)");
                    return out;
                }
                names.push_back(std::move(lower));
            }
            rule.set.emplace_back(name, std::move(value));
        }
        if (out.size() == max_header_rules) {
            item->fail("match",
                       "is one rule too many (at most " + std::to_string(max_header_rules) + ")");
            return out;
        }
        out.push_back(std::move(rule));
    }
    return out;
}

bool valid_target(std::string_view to) {
    // What goes into Location as written: visible ASCII only (RFC 3986 has no room for
    // anything else), a path or an http(s) URL.
    for (char c : to)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return false;
    if (to.substr(0, 2) == "//") return false;  // scheme-relative: another host, unannounced
    if (!to.empty() && to[0] == '/') return true;
    for (std::string_view scheme : {"https://", "http://"})
        if (to.size() > scheme.size() && to.substr(0, scheme.size()) == scheme) return true;
    return false;
}

std::vector<redirect_rule> read_redirects(table_reader& r) {
    std::vector<redirect_rule> out;
    for (table_reader* item : r.table_array("redirects")) {
        redirect_rule rule;
        rule.match = item->string("match", "");
        rule.to = item->string("to", "");
        rule.status = static_cast<int>(item->integer("status", rule.status, 0, 999));
        if (std::string why = glob_problem(rule.match); !why.empty()) {
            item->fail("match", in_quotes(rule.match) + ' ' + why);
            return out;
        }
        if (!valid_target(rule.to)) {
            item->fail("to", in_quotes(rule.to) +
                                 " must be a path starting with \"/\" or an http(s):// URL, "
                                 "in visible ASCII");
            return out;
        }
        const auto stars =
            static_cast<size_t>(std::count(rule.match.begin(), rule.match.end(), '*'));
        if (std::string why = substitution_problem(rule.to, stars); !why.empty()) {
            item->fail("to", in_quotes(rule.to) + ' ' + why);
            return out;
        }
        if (rule.status != 301 && rule.status != 302 && rule.status != 303 && rule.status != 307 &&
            rule.status != 308) {
            item->fail("status", '(' + std::to_string(rule.status) +
                                     ") must be one of 301, 302, 303, 307, 308");
            return out;
        }
        if (out.size() == max_redirect_rules) {
            item->fail("match",
                       "is one rule too many (at most " + std::to_string(max_redirect_rules) + ")");
            return out;
        }
        out.push_back(std::move(rule));
    }
    return out;
}

}  // namespace

const error_page* site_rules::page_for(int status) const noexcept {
    for (const error_page& p : error_pages)
        if (p.status == status) return &p;
    return nullptr;
}

std::string header_problem(std::string_view name, std::string_view value) {
    if (name.empty()) return "is no header name";
    for (char c : name)
        if (!detail::is_tchar(static_cast<unsigned char>(c)))
            return "is no header name (RFC 9110 token characters only)";
    // The server writes these itself: a second copy would contradict the first, or change
    // the framing.
    static constexpr std::string_view own[] = {
        "accept-ranges", "connection", "content-length", "content-range",     "content-type",
        "date",          "etag",       "keep-alive",     "last-modified",     "location",
        "server",        "te",         "trailer",        "transfer-encoding", "upgrade"};
    for (std::string_view o : own)
        if (detail::iequals(name, o)) return "is written by the server and cannot be set";
    for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f)
            return "has a value with a control byte (CR, LF, NUL...)";
    }
    if (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' ||
                           value.back() == '\t'))
        return "has a value with leading or trailing blanks";
    return {};
}

bool rule_matches(std::string_view pattern, std::string_view normalised_path,
                  glob_captures* caps) noexcept {
    // Every pattern starts with '/' (glob_problem), every normalised path lacks it.
    return !pattern.empty() && glob_match(pattern.substr(1), normalised_path, caps);
}

site_rules parse_site_rules(table_reader& r, const site_rules& defaults) {
    site_rules s = defaults;
    // A key the table sets replaces the default whole, even when it sets it empty: "no
    // error pages here" must be sayable.
    const std::vector<std::string> keys = r.keys();
    auto has = [&](std::string_view k) {
        return std::find(keys.begin(), keys.end(), k) != keys.end();
    };
    if (has("error_pages")) s.error_pages = read_error_pages(r);
    if (has("fallback")) {
        std::string fallback = r.string("fallback", "");
        std::string key;
        if (fallback.empty()) {
            s.fallback.clear();
            s.fallback_key.clear();
        } else if (std::string why = root_path_problem(fallback, key); !why.empty()) {
            r.fail("fallback", in_quotes(fallback) + ' ' + why);
        } else {
            s.fallback = std::move(fallback);
            s.fallback_key = std::move(key);
        }
    }
    s.autoindex = r.boolean("autoindex", s.autoindex);
    if (has("headers")) s.headers = read_headers(r);
    if (has("redirects")) s.redirects = read_redirects(r);
    s.https_redirect = r.boolean("https_redirect", s.https_redirect);
    return s;
}

}  // namespace preforkd::http
