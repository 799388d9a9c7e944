// The HTTP/1.1 service: one http_service per worker (file cache, date cache, buffers), one
// session per connection (parser, input buffer, queued output).
#pragma once

#include <cstdint>
#include <memory>
#include <preforkd/service.hpp>
#include <string>
#include <vector>

#include "http/http_config.hpp"
#include "http/response.hpp"
#include "http/static_file.hpp"

namespace preforkd::http {

// Limits with no configuration key (see the report / DESIGN.md).
inline constexpr int64_t send_timeout_ms = 60'000;   // no write progress for this long: close
inline constexpr int64_t linger_timeout_ms = 2'000;  // discard input this long before closing
inline constexpr uint64_t max_linger_bytes = 1 << 20;
inline constexpr uint64_t max_drained_body = 64 * 1024;  // larger GET/HEAD bodies: 413
inline constexpr size_t coalesce_limit = 64 * 1024;      // queued output before a flush
inline constexpr uint64_t write_budget = 8u << 20;       // bytes per call before yielding
inline constexpr size_t output_reserve = 4096;           // a new output string's capacity

class http_service final : public service {
  public:
    http_service(worker_context& ctx, const http_settings& settings);
    ~http_service() override;

    std::unique_ptr<session> open(accepted_connection&& conn) noexcept override;

    worker_context& ctx() const noexcept { return ctx_; }
    const http_settings& settings() const noexcept { return settings_; }
    file_cache& cache() noexcept { return cache_; }
    date_cache& dates() noexcept { return dates_; }
    std::string& line_buffer() noexcept { return line_; }
    const std::string& status_key() const noexcept { return status_key_; }
    size_t input_capacity() const noexcept { return input_capacity_; }
    size_t max_input_capacity() const noexcept { return max_input_capacity_; }

    // Input buffers are recycled between connections and between the requests of one
    // (sessions hold them only while reading and answering), so that a worker serving
    // short connections does not call malloc for each, and idle connections cost none.
    std::unique_ptr<char[]> take_buffer();
    void give_buffer(std::unique_ptr<char[]> b) noexcept;
    // Output strings are recycled between connections, with their capacity: take_output
    // fills an empty string, and give_output keeps (or frees) the buffer of one and leaves
    // it empty.
    void take_output(std::string& out);
    void give_output(std::string& out) noexcept;

  private:
    worker_context& ctx_;
    const http_settings& settings_;
    file_cache cache_;
    date_cache dates_;
    std::string line_;        // access log line and status page body, reused
    std::string status_key_;  // status_path normalised like a request path
    bool status_enabled_ = false;
    size_t input_capacity_ = 0;
    size_t max_input_capacity_ = 0;
    std::vector<std::unique_ptr<char[]>> spare_buffers_;
    std::vector<std::string> spare_outputs_;  // [0, spare_out_count_) are spares
    size_t spare_out_count_ = 0;

    friend class http_session;
};

// What make_application's make_service returns: nullptr when the config has no settings.
std::unique_ptr<service> make_http_service(worker_context& ctx);

}  // namespace preforkd::http
