// libFuzzer target for the HTTP request parser and the path normaliser.
//
// Checks, beyond "no crash, no out-of-bounds read" (ASan): a head parsed in fragments gives
// exactly what it gives in one piece, and a normalised path can never name anything above
// the root.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/path.hpp"
#include "http/request_parser.hpp"

using namespace preforkd::http;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool same_head(const request_head& a, const request_head& b) {
    return a.method == b.method && a.method_name == b.method_name && a.target == b.target &&
           a.form == b.form && a.version_minor == b.version_minor && a.host == b.host &&
           a.has_host == b.has_host && a.connection_close == b.connection_close &&
           a.connection_keep_alive == b.connection_keep_alive &&
           a.has_content_length == b.has_content_length && a.content_length == b.content_length &&
           a.has_transfer_encoding == b.has_transfer_encoding &&
           a.transfer_encoding_chunked_only == b.transfer_encoding_chunked_only &&
           a.range == b.range && a.range_repeated == b.range_repeated &&
           a.if_none_match == b.if_none_match &&
           a.if_none_match_repeated == b.if_none_match_repeated &&
           a.if_modified_since == b.if_modified_since &&
           a.if_modified_since_repeated == b.if_modified_since_repeated &&
           a.if_range == b.if_range && a.if_range_repeated == b.if_range_repeated &&
           a.user_agent == b.user_agent && a.referer == b.referer && a.bytes == b.bytes;
}

void check_path(const request_head& h) {
    target_parts parts = split_target(h.target, h.form);
    if (parts.path.empty()) return;
    for (bool hidden : {false, true}) {
        std::string out;
        if (normalize_path(parts.path, hidden, out) != path_result::ok) continue;
        check(out.empty() || out[0] != '/');
        check(out.find('\0') == std::string::npos);
        check(out.find("//") == std::string::npos);
        // No ".." or "." segment survives, so nothing resolves above the root.
        size_t start = 0;
        while (start <= out.size()) {
            size_t slash = out.find('/', start);
            std::string_view seg(out.data() + start,
                                 (slash == std::string::npos ? out.size() : slash) - start);
            check(seg != ".." && seg != ".");
            if (!hidden) check(seg.empty() || seg[0] != '.');
            if (slash == std::string::npos) break;
            start = slash + 1;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Small limit so that 414/431 are reachable with small inputs.
    const uint32_t limit = 512;
    std::string_view whole(reinterpret_cast<const char*>(data), size);

    request_parser one(limit);
    const parse_status s1 = one.parse(whole);

    // The same bytes in fragments whose sizes come from the bytes themselves.
    request_parser frag(limit);
    parse_status s2 = parse_status::need_more;
    size_t fed = 0;
    unsigned seed = 2166136261u;
    for (unsigned char c : whole) seed = (seed ^ c) * 16777619u;
    while (s2 == parse_status::need_more && fed < size) {
        seed = seed * 1103515245u + 12345u;
        fed += 1 + (seed >> 16) % 17;
        if (fed > size) fed = size;
        s2 = frag.parse(whole.substr(0, fed));
    }
    if (s2 == parse_status::need_more) s2 = frag.parse(whole);

    check(s1 == s2);
    // The method (read by the session to answer an error to HEAD without a body) does not
    // depend on the fragmentation either.
    check(one.method() == frag.method());
    if (s1 == parse_status::error) {
        check(one.error_status() == frag.error_status());
        check(one.error_status() == 400 || one.error_status() == 414 || one.error_status() == 431 ||
              one.error_status() == 505);
    }
    if (s1 == parse_status::done) {
        check(one.head_length() == frag.head_length());
        check(one.head_length() <= size && one.head_length() <= limit);
        check(same_head(one.head(), frag.head()));
        check(one.head().bytes.size() == one.head_length());
        check_path(one.head());
        // One If-None-Match line combines into itself; the head is walked without reading
        // past it.
        std::string combined;
        combine_field_lines(one.head().bytes, "if-none-match", combined);
        if (!one.head().if_none_match_repeated) check(combined == one.head().if_none_match);
    }
    return 0;
}
