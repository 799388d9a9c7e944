// The buffers of a worker's HTTP sessions, recycled between connections and between the
// requests of one, so that a worker serving short connections does not call malloc for each
// and an idle keep-alive connection holds none.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace preforkd::http {

inline constexpr size_t output_reserve = 4096;       // a new output string's capacity
inline constexpr size_t coalesce_limit = 64 * 1024;  // queued output before a flush

class buffer_pool {
  public:
    // `input_capacity`: a new input buffer's size; `max_input_capacity`: what one may grow
    // to for a long head (max_header_bytes and some of what follows it).
    buffer_pool(size_t input_capacity, size_t max_input_capacity) noexcept
        : input_capacity_(input_capacity), max_input_capacity_(max_input_capacity) {}

    size_t input_capacity() const noexcept { return input_capacity_; }
    size_t max_input_capacity() const noexcept { return max_input_capacity_; }

    // An input buffer of input_capacity() bytes. Throws std::bad_alloc. Inline, with
    // give_buffer: a keep-alive session gives its buffer back and takes one on every request.
    std::unique_ptr<char[]> take_buffer() {
        if (spare_buffers_.empty()) return std::make_unique<char[]>(input_capacity_);
        auto b = std::move(spare_buffers_.back());
        spare_buffers_.pop_back();
        return b;
    }
    // Keeps `b` (of input_capacity() bytes) for the next taker, or frees it.
    void give_buffer(std::unique_ptr<char[]> b) noexcept {
        if (!b || spare_buffers_.size() >= max_spares) return;
        try {
            spare_buffers_.push_back(std::move(b));
        } catch (...) {
            // dropped: freed by its destructor
        }
    }
    // Output strings keep their capacity: take_output fills an empty string (throws
    // std::bad_alloc), and give_output keeps (or frees) the buffer of one and leaves it empty.
    void take_output(std::string& out);
    void give_output(std::string& out) noexcept;

  private:
    static constexpr size_t max_spares = 64;

    size_t input_capacity_;
    size_t max_input_capacity_;
    std::vector<std::unique_ptr<char[]>> spare_buffers_;
    std::vector<std::string> spare_outputs_;  // [0, spare_out_count_) are spares
    size_t spare_out_count_ = 0;
};

}  // namespace preforkd::http
