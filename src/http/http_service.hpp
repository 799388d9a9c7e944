// The HTTP/1.1 service: one http_service per worker (file cache, date cache, buffers), which
// opens one http_session (session.hpp) per connection.
#pragma once

#include <cstdint>
#include <memory>
#include <preforkd/service.hpp>
#include <string>
#include <vector>

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

    // The sites (settings().sites; one made from [http] for settings built without any).
    const std::vector<site>& sites() const noexcept { return *sites_; }
    // The index of the request's site: 0 at once when there is one site (no Host is read).
    uint32_t find_site(const request_head& h) const noexcept {
        return sites_->size() > 1 ? settings_.finder.find(h) : 0;
    }
    // Settings built by hand (tests, fuzzers) without sites stay the [http] values, read live.
    bool serve_hidden(uint32_t i) const noexcept {
        return settings_.sites.empty() ? settings_.serve_hidden : settings_.sites[i].serve_hidden;
    }
    // The site's rules and root, the same way (its codings: file_cache::source()).
    const site_rules& rules(uint32_t i) const noexcept {
        return settings_.sites.empty() ? settings_.rules : settings_.sites[i].rules;
    }
    int root_fd(uint32_t i) const noexcept {
        return settings_.sites.empty() ? settings_.root_fd.get() : settings_.sites[i].root_fd;
    }
    void count_site(uint32_t i) const noexcept {
        if (settings_.site_requests) settings_.site_requests->bump(i, ctx_.slot_index());
    }
    // Where the site's access log lines go: its own file, else log.access (-1: off).
    int access_log_fd(uint32_t site) const noexcept {
        int fd = site < site_log_fd_.size() ? site_log_fd_[site] : -1;
        return fd >= 0 ? fd : ctx_.access_log_fd();
    }
    // USR1: the sites' own logs are reopened by name, like log.access.
    void on_reopen_logs() noexcept override;

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
    std::vector<site> own_sites_;  // only for settings without sites
    const std::vector<site>* sites_ = nullptr;
    // Per site: the fd its lines go to (-1: log.access), and the files this worker opened.
    std::vector<int> site_log_fd_;
    std::vector<unique_fd> site_logs_;

    // Opens each site's own log by name (as this worker's user); where that fails the file
    // inherited from the supervisor (or the previous one) stays.
    void reopen_site_logs(bool report) noexcept;
};

// What make_application's make_service returns: nullptr (the worker then exits with
// exit_code::fatal) when the config has no settings or the docroot cannot be served.
std::unique_ptr<service> make_http_service(worker_context& ctx);

}  // namespace preforkd::http
