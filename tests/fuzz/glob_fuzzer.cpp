// The glob matcher and the redirect substitution (http/glob.hpp) on any bytes: no crash or
// sanitizer report, and the properties the redirect and header rules rely on:
// - each capture lies inside the path, and putting the captures back in place of the stars
//   gives the path again (a match is a real match, the captures are what the stars covered);
// - a pattern without a star matches exactly the equal path;
// - a substituted target that passed the load-time check holds visible ASCII only, whatever
//   the path held: no CR, LF or space can reach a Location header.
// Input: pattern '\n' path '\n' to.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/glob.hpp"

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace preforkd::http;
    if (size > 8192) return 0;  // O(pattern x path) by design: keep each run short
    std::string_view in(reinterpret_cast<const char*>(data), size);
    const size_t a = in.find('\n');
    std::string_view pattern = in.substr(0, a);
    std::string_view rest = a == std::string_view::npos ? std::string_view() : in.substr(a + 1);
    const size_t b = rest.find('\n');
    std::string_view path = rest.substr(0, b);
    std::string_view to = b == std::string_view::npos ? std::string_view() : rest.substr(b + 1);

    (void)glob_problem(pattern);
    size_t stars = 0;
    for (char c : pattern) stars += c == '*';

    glob_captures caps;
    const bool matched = glob_match(pattern, path, &caps);
    check(matched == glob_match(pattern, path));
    if (stars == 0) check(matched == (pattern == path));
    if (matched) {
        check(caps.count == (stars < max_glob_stars ? stars : max_glob_stars));
        for (size_t i = 0; i < caps.count; ++i) {
            const char* p = caps.star[i].data();
            check(caps.star[i].empty() ||
                  (p >= path.data() && p + caps.star[i].size() <= path.data() + path.size()));
        }
        if (stars <= max_glob_stars) {
            std::string rebuilt;
            size_t k = 0;
            for (char c : pattern) {
                if (c == '*')
                    rebuilt.append(caps.star[k++]);
                else
                    rebuilt.push_back(c);
            }
            check(rebuilt == path);
        }
    }

    std::string out;
    substitute(to, caps, out);
    bool visible_to = true;
    for (char c : to)
        visible_to = visible_to && static_cast<unsigned char>(c) > 0x20 &&
                     static_cast<unsigned char>(c) < 0x7f;
    if (visible_to && substitution_problem(to, matched ? caps.count : 0).empty()) {
        for (char c : out)
            check(static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f);
    }
    return 0;
}
