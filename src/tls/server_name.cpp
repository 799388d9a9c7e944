#include "tls/server_name.hpp"

namespace preforkd::tls {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view drop_trailing_dot(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    return s;
}

bool equal_nocase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool is_wildcard(std::string_view pattern) {
    return pattern.size() > 2 && pattern.substr(0, 2) == "*.";
}

}  // namespace

std::string normalize_server_name(std::string_view name) {
    name = drop_trailing_dot(name);
    std::string out(name);
    for (char& c : out) c = lower(c);
    return out;
}

bool server_name_matches(std::string_view pattern, std::string_view name) {
    pattern = drop_trailing_dot(pattern);
    name = drop_trailing_dot(name);
    if (name.empty() || pattern.empty()) return false;
    if (!is_wildcard(pattern)) return equal_nocase(pattern, name);
    // "*.example.net": `name` must be one non-empty label, a dot, then "example.net".
    std::string_view suffix = pattern.substr(1);  // ".example.net"
    size_t dot = name.find('.');
    if (dot == 0 || dot == std::string_view::npos) return false;
    return equal_nocase(name.substr(dot), suffix);
}

size_t select_certificate(const std::vector<std::vector<std::string>>& names_per_certificate,
                          std::string_view name) {
    if (drop_trailing_dot(name).empty()) return 0;
    for (size_t i = 0; i < names_per_certificate.size(); ++i)
        for (const std::string& pattern : names_per_certificate[i])
            if (!is_wildcard(pattern) && server_name_matches(pattern, name)) return i;
    for (size_t i = 0; i < names_per_certificate.size(); ++i)
        for (const std::string& pattern : names_per_certificate[i])
            if (is_wildcard(pattern) && server_name_matches(pattern, name)) return i;
    return 0;
}

}  // namespace preforkd::tls
