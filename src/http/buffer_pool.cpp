#include "http/buffer_pool.hpp"

namespace preforkd::http {

namespace {
constexpr size_t max_spares = 64;
}

std::unique_ptr<char[]> buffer_pool::take_buffer() {
    if (spare_buffers_.empty()) return std::make_unique<char[]>(input_capacity_);
    auto b = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
    return b;
}

void buffer_pool::give_buffer(std::unique_ptr<char[]> b) noexcept {
    if (!b || spare_buffers_.size() >= max_spares) return;
    try {
        spare_buffers_.push_back(std::move(b));
    } catch (...) {
        // dropped: freed by its destructor
    }
}

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
