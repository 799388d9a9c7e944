// PROXY protocol header parser: no crash or sanitizer report on any input, and the answers the
// worker relies on when it re-parses a growing buffer:
// - done never consumes more than it was given, nor more than the largest header;
// - every prefix shorter than a done header is need_more (a split never finishes early);
// - once done or invalid, every longer input gives the same answer (bytes behind the header
//   belong to the application and cannot change it);
// - feeding byte by byte reaches the same answer as the whole input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/proxy_protocol.hpp"

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool same(const preforkd::proxy_result& a, const preforkd::proxy_result& b) {
    return a.status == b.status && a.consumed == b.consumed && a.local == b.local &&
           std::memcmp(&a.source, &b.source, sizeof a.source) == 0 &&
           std::memcmp(&a.destination, &b.destination, sizeof a.destination) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using preforkd::proxy_status;
    const preforkd::proxy_result whole = preforkd::parse_proxy_header(data, size);
    if (whole.status == proxy_status::done) {
        check(whole.consumed > 0 && whole.consumed <= size);
        check(whole.consumed <= preforkd::proxy_header_max);
    } else {
        check(whole.consumed == 0);
    }
    if (whole.status == proxy_status::need_more) check(size < preforkd::proxy_header_max);

    // Byte by byte, as a worst-case network would deliver it.
    preforkd::proxy_result last;
    size_t decided_at = 0;
    for (size_t k = 0; k <= size; ++k) {
        const preforkd::proxy_result r = preforkd::parse_proxy_header(data, k);
        if (last.status != proxy_status::need_more) {
            check(same(r, last));  // a decision never changes with more bytes
        } else if (r.status != proxy_status::need_more) {
            decided_at = k;
        }
        if (r.status == proxy_status::done) check(r.consumed <= k);
        last = r;
    }
    check(same(last, whole));
    // A done header is decided exactly when its last byte arrives.
    if (whole.status == proxy_status::done) check(decided_at == whole.consumed);
    return 0;
}
