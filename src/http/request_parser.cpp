#include "http/request_parser.hpp"

#include <array>
#include <cstring>
#include <preforkd/detail/text.hpp>

namespace preforkd::http {

namespace {

using char_table = std::array<bool, 256>;

constexpr char_table make_tchar() {
    char_table t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}

// Visible ASCII but '#' (a fragment is never sent) and the three characters every client
// percent-encodes ('"', '<', '>'). Anything else, control bytes and bytes >= 0x80 included,
// makes the request-target malformed.
constexpr char_table make_target_char() {
    char_table t{};
    for (int c = 0x21; c <= 0x7e; ++c) t[c] = true;
    t['#'] = t['"'] = t['<'] = t['>'] = false;
    return t;
}

// RFC 9110 section 5.5 field-content: VCHAR, obs-text, SP and HTAB. NUL, CR, LF, the other
// controls and DEL are refused.
constexpr char_table make_field_char() {
    char_table t{};
    for (int c = 0x20; c <= 0x7e; ++c) t[c] = true;
    for (int c = 0x80; c <= 0xff; ++c) t[c] = true;
    t['\t'] = true;
    return t;
}

// uri-host [ ":" port ] (RFC 3986): reg-name, IPv4 and IP-literal characters.
constexpr char_table make_host_char() {
    char_table t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=%:[]")) t[static_cast<unsigned char>(c)] = true;
    return t;
}

constexpr char_table tchar = make_tchar();
constexpr char_table target_char = make_target_char();
constexpr char_table field_char = make_field_char();
constexpr char_table host_char = make_host_char();
// reg-name and IPv4address: the host characters but the port's ':' and the IP-literal's [].
constexpr char_table reg_name_char = [] {
    char_table t = make_host_char();
    t[':'] = t['['] = t[']'] = false;
    return t;
}();

bool all_of(std::string_view s, const char_table& t) noexcept {
    for (char c : s)
        if (!t[static_cast<unsigned char>(c)]) return false;
    return true;
}

// RFC 9112 section 3.2 and RFC 3986 section 3.2.2: uri-host [ ":" port ], port = *DIGIT.
// "x:abc" is no Host: a server that let it through would leave the port's meaning to
// whatever reads it next. It runs for every request: one table lookup per byte of the usual
// name or IPv4 address, and the IP-literal off the common path.
bool valid_host_port(std::string_view v) noexcept {
    const auto* const begin = reinterpret_cast<const unsigned char*>(v.data());
    const auto* p = begin;
    const auto* const end = p + v.size();
    // Four bytes a step while they are all reg-name bytes: one branch for four lookups.
    while (
        end - p >= 4 &&
        (static_cast<unsigned>(reg_name_char[p[0]]) & static_cast<unsigned>(reg_name_char[p[1]]) &
         static_cast<unsigned>(reg_name_char[p[2]]) & static_cast<unsigned>(reg_name_char[p[3]])))
        p += 4;
    while (p != end && reg_name_char[*p]) ++p;
    if (p == begin && p != end && *p == '[') {
        for (++p; p != end && *p != ']'; ++p)
            if (!host_char[*p] || *p == '[') return false;
        if (p == end) return false;
        ++p;
    }
    if (p == end) return true;
    if (*p != ':') return false;
    for (++p; p != end; ++p)
        if (static_cast<unsigned char>(*p - '0') > 9) return false;
    return true;
}

method_t classify_method(std::string_view m) noexcept {
    // Methods are case-sensitive (RFC 9110 section 9.1): "get" is an unknown method.
    if (m == "GET") return method_t::get;
    if (m == "HEAD") return method_t::head;
    if (m == "POST") return method_t::post;
    if (m == "PUT") return method_t::put;
    if (m == "DELETE") return method_t::delete_;
    if (m == "CONNECT") return method_t::connect;
    if (m == "OPTIONS") return method_t::options;
    if (m == "TRACE") return method_t::trace;
    if (m == "PATCH") return method_t::patch;
    return method_t::other;
}

using preforkd::detail::trim_ows;

// Calls f(token) for each element of a comma-separated list, empty elements skipped.
template <class F>
void for_each_element(std::string_view list, F&& f) noexcept {
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view item = trim_ows(list.substr(0, comma));
        if (!item.empty()) f(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

bool valid_absolute_form(std::string_view t) noexcept {
    // scheme "://" authority [path-abempty] [ "?" query ]; only http and https make sense
    // here, userinfo is refused (RFC 9110 section 4.2.4).
    size_t colon = t.find("://");
    if (colon == std::string_view::npos) return false;
    std::string_view scheme = t.substr(0, colon);
    if (!detail::iequals(scheme, "http") && !detail::iequals(scheme, "https")) return false;
    std::string_view rest = t.substr(colon + 3);
    size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    return !authority.empty() && valid_host_port(authority);
}

}  // namespace

namespace detail {

bool is_tchar(unsigned char c) noexcept { return tchar[c]; }

bool iequals(std::string_view s, std::string_view lower) noexcept {
    if (s.size() != lower.size()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
        if (c != lower[i]) return false;
    }
    return true;
}

}  // namespace detail

void request_parser::reset() noexcept {
    uint32_t max = max_;
    *this = request_parser(max);
}

parse_status request_parser::fail(int status) noexcept {
    state_ = state::error;
    error_status_ = status;
    return parse_status::error;
}

std::string_view request_parser::request_line(std::string_view data) const noexcept {
    if (request_line_.len == 0 || size_t{request_line_.off} + request_line_.len > data.size())
        return {};
    return view(data, request_line_);
}

std::string_view request_line_prefix(std::string_view data, size_t max) noexcept {
    size_t b = 0;
    while (b < data.size() && (data[b] == '\r' || data[b] == '\n')) ++b;  // empty lines before it
    data.remove_prefix(b);
    data = data.substr(0, data.find_first_of("\r\n"));
    return data.substr(0, max);
}

parse_status request_parser::parse(std::string_view data) noexcept {
    if (state_ == state::done) return parse_status::done;
    if (state_ == state::error) return parse_status::error;
    const char* p = data.data();
    const size_t n = data.size();

    for (;;) {
        if (!method_checked_ && (state_ == state::request_line || state_ == state::leading_lines)) {
            // Refuse a malformed method at once instead of waiting for a line ending that a
            // stray TLS handshake or binary probe may never send.
            // Bytes past the limit are judged by the limit alone, so that the answer does
            // not depend on how the bytes were split.
            const size_t stop = n < max_ ? n : max_;
            size_t i = method_scan_ > line_start_ ? method_scan_ : line_start_;
            for (; i < stop; ++i) {
                unsigned char c = static_cast<unsigned char>(p[i]);
                if (c == ' ') {
                    method_checked_ = true;
                    // Known from here on, whatever fails later: an error answer to HEAD
                    // carries no body.
                    head_.method =
                        classify_method(std::string_view(p + line_start_, i - line_start_));
                    break;
                }
                if (c == '\r' || c == '\n') break;  // judged with the whole line
                if (!tchar[c]) return fail(400);
            }
            method_scan_ = i;
        }

        const void* lf = scan_ < n ? std::memchr(p + scan_, '\n', n - scan_) : nullptr;
        if (lf == nullptr) {
            scan_ = n;
            if (n > max_) return fail(state_ == state::headers ? 431 : 414);
            return parse_status::need_more;
        }
        const size_t lf_pos = static_cast<size_t>(static_cast<const char*>(lf) - p);
        const size_t next = lf_pos + 1;
        if (next > max_) return fail(state_ == state::headers ? 431 : 414);
        // Only CRLF ends a line. RFC 9112 section 2.2 lets a recipient also take a bare LF,
        // but a head that one hop frames by LF and another by CRLF is how a request gets
        // smuggled past a proxy, so a bare LF is refused like a bare CR.
        if (lf_pos == line_start_ || p[lf_pos - 1] != '\r') return fail(400);
        const size_t end = lf_pos - 1;
        std::string_view line(p + line_start_, end - line_start_);

        switch (state_) {
            case state::leading_lines:
                // RFC 9112 section 2.2: ignore empty lines before the request line.
                if (line.empty()) break;
                state_ = state::request_line;
                [[fallthrough]];
            case state::request_line:
                if (!parse_request_line(line, line_start_)) return parse_status::error;
                state_ = state::headers;
                break;
            case state::headers:
                if (line.empty()) {
                    head_length_ = next;
                    if (!finish(data)) return parse_status::error;
                    state_ = state::done;
                    return parse_status::done;
                }
                if (!parse_header(line, line_start_)) return parse_status::error;
                break;
            case state::done:
            case state::error:
                break;
        }
        line_start_ = scan_ = next;
    }
}

bool request_parser::parse_request_line(std::string_view line, size_t off) noexcept {
    // method SP request-target SP HTTP-version, one SP each (RFC 9112 section 3).
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return fail(400), false;
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return fail(400), false;
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!all_of(method, tchar)) return fail(400), false;
    if (!all_of(target, target_char)) return fail(400), false;

    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9')
        return fail(400), false;
    if (version[5] != '1') return fail(505), false;
    // RFC 9110 section 2.5: a higher minor version is served as the highest one we know.
    head_.version_minor = version[7] == '0' ? 0 : 1;

    head_.method = classify_method(method);
    if (target[0] == '/') {
        head_.form = target_form::origin;
    } else if (target == "*") {
        head_.form = target_form::asterisk;
        if (head_.method != method_t::options) return fail(400), false;
    } else if (valid_absolute_form(target)) {
        head_.form = target_form::absolute;
    } else if (head_.method == method_t::connect && all_of(target, host_char)) {
        head_.form = target_form::authority;
    } else {
        return fail(400), false;
    }

    auto at = [off](size_t pos, size_t len) {
        return span{static_cast<uint32_t>(off + pos), static_cast<uint32_t>(len)};
    };
    method_ = at(0, sp1);
    target_ = at(sp1 + 1, target.size());
    request_line_ = at(0, line.size());
    return true;
}

bool request_parser::parse_header(std::string_view line, size_t off) noexcept {
    // A line starting with whitespace is obs-fold (or whitespace after the request line,
    // RFC 9112 section 2.2): both refused rather than guessed at.
    if (line[0] == ' ' || line[0] == '\t') return fail(400), false;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(400), false;
    std::string_view name = line.substr(0, colon);
    // Whitespace between name and colon fails the token check (RFC 9112 section 5.1).
    if (!all_of(name, tchar)) return fail(400), false;
    std::string_view raw = line.substr(colon + 1);
    if (!all_of(raw, field_char)) return fail(400), false;
    std::string_view value = trim_ows(raw);
    const size_t value_off = off + static_cast<size_t>(value.data() - line.data());
    const span value_span{static_cast<uint32_t>(value_off), static_cast<uint32_t>(value.size())};

    switch (name.size()) {
        case 4:
            if (detail::iequals(name, "host")) {
                if (head_.has_host) return fail(400), false;  // RFC 9112 section 3.2
                if (!valid_host_port(value)) return fail(400), false;
                head_.has_host = true;
                host_ = value_span;
            }
            break;
        case 5:
            if (detail::iequals(name, "range")) range_.take(value_span, head_.range_repeated);
            break;
        case 7:
            if (detail::iequals(name, "referer")) referer_ = value_span;
            break;
        case 8:
            if (detail::iequals(name, "if-range"))
                if_range_.take(value_span, head_.if_range_repeated);
            break;
        case 10:
            if (detail::iequals(name, "connection")) {
                for_each_element(value, [this](std::string_view token) {
                    if (detail::iequals(token, "close")) head_.connection_close = true;
                    if (detail::iequals(token, "keep-alive")) head_.connection_keep_alive = true;
                });
            } else if (detail::iequals(name, "user-agent")) {
                user_agent_ = value_span;
            }
            break;
        case 13:
            // Later lines are read by combine_field_lines() only if there are any: the usual
            // single line costs nothing more.
            if (detail::iequals(name, "if-none-match"))
                if_none_match_.take(value_span, head_.if_none_match_repeated);
            break;
        case 15:
            if (detail::iequals(name, "accept-encoding"))
                accept_encoding_.take(value_span, head_.accept_encoding_repeated);
            break;
        case 14:
            if (detail::iequals(name, "content-length")) {
                // One Content-Length, 1*DIGIT: no sign, no list, no repeat (RFC 9112
                // section 6.3; a repeat is refused even with equal values), no overflow.
                if (head_.has_content_length) return fail(400), false;
                if (value.empty() || value.size() > 18) return fail(400), false;
                uint64_t v = 0;
                for (char c : value) {
                    if (c < '0' || c > '9') return fail(400), false;
                    v = v * 10 + static_cast<uint64_t>(c - '0');
                }
                head_.has_content_length = true;
                head_.content_length = v;
            }
            break;
        case 17:
            if (detail::iequals(name, "transfer-encoding")) {
                head_.has_transfer_encoding = true;
                bool empty = true;
                for_each_element(value, [this, &empty](std::string_view coding) {
                    empty = false;
                    ++te_codings_;
                    te_last_chunked_ = detail::iequals(coding, "chunked");
                    if (te_last_chunked_) ++te_chunked_;
                });
                if (empty) return fail(400), false;
            } else if (detail::iequals(name, "if-modified-since")) {
                if_modified_since_.take(value_span, head_.if_modified_since_repeated);
            }
            break;
        default:
            break;
    }
    return true;
}

bool request_parser::finish(std::string_view data) noexcept {
    if (head_.version_minor == 1 && !head_.has_host) return fail(400), false;
    // Without an authority in the target, Host carries it (RFC 9112 section 3.2), and an
    // http URI with an empty host is invalid (RFC 9110 section 4.2.1): nginx answers 400
    // too. An empty Host (or a bare ":port") stays fine beside an absolute-form target,
    // whose own authority is used and Host ignored (RFC 9112 section 3.2.2).
    if (head_.has_host && head_.form != target_form::absolute &&
        (host_.len == 0 || data[host_.off] == ':'))
        return fail(400), false;
    if (head_.has_transfer_encoding) {
        // RFC 9112 section 6.1 and 6.3: Transfer-Encoding in HTTP/1.0, beside a
        // Content-Length, with chunked applied twice or not last: the framing cannot be
        // trusted, so the request is refused and the connection closed.
        if (head_.version_minor == 0 || head_.has_content_length || !te_last_chunked_ ||
            te_chunked_ > 1)
            return fail(400), false;
        head_.transfer_encoding_chunked_only = te_codings_ == 1;
    }
    head_.method_name = view(data, method_);
    head_.target = view(data, target_);
    head_.request_line = view(data, request_line_);
    head_.host = view(data, host_);
    head_.if_none_match = view(data, if_none_match_.value);
    head_.if_modified_since = view(data, if_modified_since_.value);
    head_.range = view(data, range_.value);
    head_.if_range = view(data, if_range_.value);
    head_.user_agent = view(data, user_agent_);
    head_.referer = view(data, referer_);
    head_.accept_encoding = view(data, accept_encoding_.value);
    head_.has_accept_encoding = accept_encoding_.seen;
    head_.bytes = data.substr(0, head_length_);
    return true;
}

void combine_field_lines(std::string_view head, std::string_view lower_name, std::string& out) {
    out.clear();
    bool request_line_seen = false;
    // The head was accepted by parse(): every line ends in CRLF, header lines have a colon.
    while (!head.empty()) {
        const size_t eol = head.find("\r\n");
        if (eol == std::string_view::npos) break;
        const std::string_view line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        if (!request_line_seen) {
            request_line_seen = !line.empty();  // empty lines before it are skipped
            continue;
        }
        if (line.empty()) break;  // the end of the head
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || !detail::iequals(line.substr(0, colon), lower_name))
            continue;
        const std::string_view value = trim_ows(line.substr(colon + 1));
        if (value.empty()) continue;
        if (!out.empty()) out.append(", ");
        out.append(value);
    }
}

}  // namespace preforkd::http
