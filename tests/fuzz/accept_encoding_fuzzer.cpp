// libFuzzer target for the Accept-Encoding parser and the choice of a representation.
//
// Checks, beyond "no crash" (ASan, UBSan): every weight is in 0..1000 or "not named", the
// choice is identity or a coding that is available and wanted (q > 0) at least as much as
// identity, and the first byte picks what is available, so every mask is tried.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/accept_encoding.hpp"

using namespace preforkd::http;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const unsigned available = data[0] & 0x0e;  // br, zstd, gzip bits
    const bool present = (data[0] & 1) == 0;
    const std::string_view value(reinterpret_cast<const char*>(data + 1), size - 1);
    const accept_encoding ae = parse_accept_encoding(value);
    for (int16_t q : ae.q) check(q >= -1 && q <= 1000);
    check(ae.any >= -1 && ae.any <= 1000);
    static constexpr coding orders[2][3] = {{coding::br, coding::zstd, coding::gzip},
                                            {coding::gzip, coding::br, coding::zstd}};
    for (const auto& order : orders) {
        const coding c = choose_coding(ae, present, available, order, 3);
        if (c == coding::identity) continue;
        check(present);
        check((available & coding_bit(c)) != 0);
        check(ae.quality(c) > 0);
        check(ae.quality(c) >= ae.quality(coding::identity));
        for (coding other : order)
            if ((available & coding_bit(other)) != 0) check(ae.quality(other) <= ae.quality(c));
    }
    return 0;
}
