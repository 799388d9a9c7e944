// libFuzzer target for how a TLS listener reads a connection's first bytes.
//
// Checks, beyond "no crash, no out-of-bounds read" (ASan): the verdict is stable as bytes
// arrive (a prefix that decided something keeps that decision when more bytes follow, and
// need_more only ever turns into a decision), so reading in fragments cannot change the
// outcome; and need_more never lasts past the longest method token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "tls/first_bytes.hpp"

using namespace preforkd::tls;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const first_bytes_kind whole = classify_first_bytes(data, size);
    if (size > max_method_length) check(whole != first_bytes_kind::need_more);
    bool decided = false;
    first_bytes_kind first_decision = first_bytes_kind::need_more;
    for (size_t n = 0; n <= size; ++n) {
        first_bytes_kind k = classify_first_bytes(data, n);
        if (decided) {
            check(k == first_decision);
        } else if (k != first_bytes_kind::need_more) {
            decided = true;
            first_decision = k;
        }
    }
    if (decided) check(whole == first_decision);
    return 0;
}
