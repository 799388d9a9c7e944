// The HTTP/1.1 service: one http_service per worker (file cache, date cache, buffers), which
// opens one http_session (session.hpp) per connection.
#pragma once

#include <cstdint>
#include <memory>
#include <preforkd/service.hpp>
#include <string>

#include "http/buffer_pool.hpp"
#include "http/compress_cache.hpp"
#include "http/http_config.hpp"
#include "http/response.hpp"
#include "http/static_file.hpp"

namespace preforkd::http {

// Limits with no configuration key (see the report / DESIGN.md).
inline constexpr int64_t send_timeout_ms = 60'000;   // no write progress for this long: close
inline constexpr int64_t linger_timeout_ms = 2'000;  // discard input this long before closing
inline constexpr uint64_t max_linger_bytes = 1 << 20;
inline constexpr uint64_t max_drained_body = 64 * 1024;  // larger GET/HEAD bodies: 413
inline constexpr uint64_t write_budget = 8u << 20;       // bytes per call before yielding

class http_service final : public service {
  public:
    http_service(worker_context& ctx, const http_settings& settings);
    ~http_service() override;

    std::unique_ptr<session> open(accepted_connection&& conn) noexcept override;
    // A PROXY header counts as part of the request head: bounded by http.header_timeout.
    int64_t first_bytes_timeout_ms() const noexcept override {
        return settings_.header_timeout.count();
    }

    worker_context& ctx() const noexcept { return ctx_; }
    const http_settings& settings() const noexcept { return settings_; }
    file_cache& cache() noexcept { return cache_; }
    // This worker's compression thread (started at its first job): one for every site.
    http::compressor& compressor() noexcept { return compressor_; }
    date_cache& dates() noexcept { return dates_; }
    buffer_pool& buffers() noexcept { return buffers_; }
    // The access log line and the status page body, reused: never both at once.
    std::string& line_buffer() noexcept { return line_; }
    // status_path normalised like a request path; only when status_enabled().
    const std::string& status_key() const noexcept { return status_key_; }
    bool status_enabled() const noexcept { return status_enabled_; }
    // health_path and metrics_path normalised the same way; "" when disabled.
    const std::string& health_key() const noexcept { return health_key_; }
    const std::string& metrics_key() const noexcept { return metrics_key_; }
    size_t input_capacity() const noexcept { return buffers_.input_capacity(); }

  private:
    worker_context& ctx_;
    const http_settings& settings_;
    file_cache cache_;
    http::compressor compressor_;
    date_cache dates_;
    buffer_pool buffers_;
    std::string line_;
    std::string status_key_;
    bool status_enabled_ = false;
    std::string health_key_;
    std::string metrics_key_;
};

// What make_application's make_service returns: nullptr (the worker then exits with
// exit_code::fatal) when the config has no settings or the docroot cannot be served.
std::unique_ptr<service> make_http_service(worker_context& ctx);

}  // namespace preforkd::http
