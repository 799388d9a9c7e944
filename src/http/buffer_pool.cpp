#include "http/buffer_pool.hpp"

namespace preforkd::http {

// Swaps rather than moves: on the hot path (every keep-alive request) a swap with a slot
// that stays in the vector is a few stores, with no construction or destruction.
void buffer_pool::take_output(std::string& out) {
    if (spare_out_count_ > 0) {
        out.swap(spare_outputs_[--spare_out_count_]);
    } else {
        // Room for a head and a small file: no growth steps for the usual response.
        out.reserve(output_reserve);
    }
}

void buffer_pool::give_output(std::string& out) noexcept {
    // A buffer that grew for a burst of pipelined responses is not worth keeping, nor one
    // that never got its reserve.
    const size_t cap = out.capacity();
    if (cap >= output_reserve && cap <= coalesce_limit * 2 && spare_out_count_ < max_spares) {
        out.clear();
        try {
            if (spare_out_count_ == spare_outputs_.size()) spare_outputs_.emplace_back();
            out.swap(spare_outputs_[spare_out_count_++]);
            return;
        } catch (...) {
            // no slot: freed below
        }
    }
    std::string().swap(out);
}

}  // namespace preforkd::http
