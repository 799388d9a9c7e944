// Small text helpers shared by the configuration errors, the logs and the HTTP service:
// each exists once. Internal to preforkd (namespace detail).
#pragma once

#include <string>
#include <string_view>

namespace preforkd::detail {

// Strips optional white space (SP and HTAB, RFC 9110 section 5.6.3) from both ends.
inline std::string_view trim_ows(std::string_view s) noexcept {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return s.substr(b, e - b);
}

// Appends `s` with every control byte (< 0x20, 0x7f), every byte >= 0x80 and '\' written as
// \xhh, so that a log line or an error message stays one line and says unambiguously which
// bytes were sent. Bytes in `also` (for example '"' inside a quoted log field) get \xhh too.
inline void append_hex_escaped(std::string& out, std::string_view s, std::string_view also = {}) {
    static constexpr char hex[] = "0123456789abcdef";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '\\' || also.find(ch) != std::string_view::npos) {
            const char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            out.append(esc, 4);
        } else {
            out.push_back(ch);
        }
    }
}

inline std::string hex_escaped(std::string_view s, std::string_view also = {}) {
    std::string out;
    out.reserve(s.size());
    append_hex_escaped(out, s, also);
    return out;
}

// Appends `s` with & < > " ' written as entities, so that text from a file name or the
// configuration is text in an HTML page, also inside a quoted attribute; every other byte
// (UTF-8 included) is copied as is. One escaper for the listing and the status page.
inline void append_html_escaped(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
            case '&':
                out.append("&amp;");
                break;
            case '<':
                out.append("&lt;");
                break;
            case '>':
                out.append("&gt;");
                break;
            case '"':
                out.append("&quot;");
                break;
            case '\'':
                out.append("&#39;");
                break;
            default:
                out.push_back(c);
        }
    }
}

}  // namespace preforkd::detail
