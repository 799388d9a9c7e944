#include "http/glob.hpp"

#include <preforkd/detail/text.hpp>

namespace preforkd::http {

std::string glob_problem(std::string_view pattern) {
    if (pattern.empty() || pattern[0] != '/') return "must start with \"/\"";
    if (pattern.size() > max_glob_length)
        return "is longer than " + std::to_string(max_glob_length) + " bytes";
    size_t stars = 0;
    for (size_t i = 0; i < pattern.size(); ++i) {
        const auto c = static_cast<unsigned char>(pattern[i]);
        if (c < 0x20 || c == 0x7f) return "holds a control byte";
        if (c != '*') continue;
        // "**" would make the split between two captures a guess; "*" crosses '/' already.
        if (i + 1 < pattern.size() && pattern[i + 1] == '*')
            return "holds \"**\" (one \"*\" already matches across \"/\")";
        if (++stars > max_glob_stars)
            return "has more than " + std::to_string(max_glob_stars) + " \"*\"";
    }
    return {};
}

bool glob_match(std::string_view pattern, std::string_view path, glob_captures* caps) noexcept {
    // begin[k]/end[k]: what star k covers. When a byte does not match, the last star seen
    // takes one more byte and the pattern after it is tried again from there; earlier
    // stars keep what they have, which is why they end up as short as they can be.
    std::array<size_t, max_glob_stars> begin{};
    std::array<size_t, max_glob_stars> end{};
    size_t p = 0;
    size_t t = 0;
    size_t star_p = std::string_view::npos;  // the last star's position in the pattern
    size_t star_t = 0;                       // where its match ends now
    size_t star_k = 0;                       // its index
    size_t k = 0;                            // stars passed so far
    while (t < path.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            if (k < max_glob_stars) begin[k] = end[k] = t;
            star_p = p;
            star_t = t;
            star_k = k;
            ++k;
            ++p;
        } else if (p < pattern.size() && pattern[p] == path[t]) {
            ++p;
            ++t;
        } else if (star_p != std::string_view::npos) {
            ++star_t;
            if (star_k < max_glob_stars) end[star_k] = star_t;
            t = star_t;
            p = star_p + 1;
            k = star_k + 1;
        } else {
            return false;
        }
    }
    for (; p < pattern.size() && pattern[p] == '*'; ++p, ++k)
        if (k < max_glob_stars) begin[k] = end[k] = t;
    if (p != pattern.size()) return false;
    if (caps) {
        caps->count = k < max_glob_stars ? k : max_glob_stars;
        for (size_t i = 0; i < caps->count; ++i)
            caps->star[i] = path.substr(begin[i], end[i] - begin[i]);
    }
    return true;
}

std::string substitution_problem(std::string_view to, size_t stars) {
    for (size_t i = 0; i < to.size(); ++i) {
        if (to[i] != '$') continue;
        if (i + 1 < to.size() && to[i + 1] == '$') {
            ++i;
            continue;
        }
        if (i + 1 >= to.size() || to[i + 1] < '1' || to[i + 1] > '9')
            return "has a \"$\" that is not $1..$9 (write \"$$\" for a \"$\")";
        const size_t n = static_cast<size_t>(to[i + 1] - '0');
        if (n > stars)
            return "names $" + std::to_string(n) + ", but match has " + std::to_string(stars) +
                   " \"*\"";
        ++i;
    }
    return {};
}

void append_encoded_path(std::string& out, std::string_view path) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : path) {
        const auto c = static_cast<unsigned char>(ch);
        const bool plain =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            std::string_view("-._~!$&'()*+,;=:@/").find(ch) != std::string_view::npos;
        if (plain) {
            out.push_back(ch);
        } else {
            const char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            out.append(esc, 3);
        }
    }
}

void substitute(std::string_view to, const glob_captures& caps, std::string& out) {
    for (size_t i = 0; i < to.size(); ++i) {
        if (to[i] != '$' || i + 1 >= to.size()) {
            out.push_back(to[i]);
            continue;
        }
        const char next = to[i + 1];
        if (next == '$') {
            out.push_back('$');
            ++i;
        } else if (next >= '1' && next <= '9') {
            const auto n = static_cast<size_t>(next - '1');
            // The capture is decoded path bytes: encoded again, so that a "?" or a space in
            // it cannot end the path or the header.
            if (n < caps.count) append_encoded_path(out, caps.star[n]);
            ++i;
        } else {
            out.push_back('$');
        }
    }
}

}  // namespace preforkd::http
