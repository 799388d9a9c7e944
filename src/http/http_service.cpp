#include "http/http_service.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <preforkd/detail/text.hpp>
#include <preforkd/log.hpp>

#include "http/path.hpp"
#include "http/session.hpp"

namespace preforkd::http {

namespace {

// Room for the largest head plus some of what follows it; a connection starts with a smaller
// buffer and grows to this only when a head needs it (see http_session::read_some).
size_t max_input(const http_settings& s) noexcept { return size_t{s.max_header_bytes} + 4096; }

// Why this worker cannot serve http.root, or "" when it can. The supervisor opened the
// folder (O_PATH) when it loaded the configuration; by the time a worker starts, the folder
// may have been removed, or the worker's user (after the privilege drop) may not be allowed
// to search it. Either way every request would fail: better to exit fatal and say why once.
std::string root_problem(const std::string& key, const std::string& root, int root_fd) {
    struct stat st {};
    // Looking up "." needs search permission on the folder, as serving files beneath it does.
    if (::fstatat(root_fd, ".", &st, 0) != 0)
        return fmt::format("{} {}: {}", key, preforkd::detail::hex_escaped(root),
                           std::strerror(errno));
    if (st.st_nlink == 0)
        return fmt::format("{} {}: the folder was removed", key,
                           preforkd::detail::hex_escaped(root));
    return {};
}

std::string root_problem(const http_settings& s) {
    if (!s.sites_configured) return root_problem("http.root", s.root, s.root_fd.get());
    for (size_t i = 0; i < s.sites.size(); ++i) {
        std::string why =
            root_problem(fmt::format("site[{}].root", i), s.sites[i].root, s.sites[i].root_fd);
        if (!why.empty()) return why;
    }
    return {};
}

}  // namespace

http_service::http_service(worker_context& ctx, const http_settings& settings)
    : ctx_(ctx),
      settings_(settings),
      cache_(settings),
      compressor_(settings.compress_cache.dir_fd.get(), settings.compress_cache.max_bytes),
      dates_(std::string("preforkd/") + PREFORKD_VERSION),
      buffers_(std::min<size_t>(max_input(settings), 16 * 1024), max_input(settings)) {
    if (!settings.status_path.empty() &&
        normalize_path(settings.status_path, true, status_key_) == path_result::ok)
        status_enabled_ = true;
    // "" never equals a normalised request path, so an unset key disables the handler.
    if (!settings.health_path.empty() &&
        normalize_path(settings.health_path, true, health_key_) != path_result::ok)
        health_key_.clear();
    if (!settings.metrics_path.empty() &&
        normalize_path(settings.metrics_path, true, metrics_key_) != path_result::ok)
        metrics_key_.clear();
    line_.reserve(1024);
    if (settings.sites.empty()) own_sites_.push_back(site_from_http(settings));
    sites_ = settings.sites.empty() ? &own_sites_ : &settings.sites;
    site_log_fd_.assign(sites_->size(), -1);
    site_logs_.resize(sites_->size());
    for (size_t i = 0; i < sites_->size(); ++i) site_log_fd_[i] = (*sites_)[i].access_fd.get();
    // A worker started after a USR1 inherits the supervisor's files from before it.
    reopen_site_logs(false);
}

void http_service::reopen_site_logs(bool report) noexcept {
    for (size_t i = 0; i < sites_->size(); ++i) {
        const std::string& path = (*sites_)[i].access_log;
        if (path.empty()) continue;
        auto fd = open_log_file(path);
        if (!fd) {
            if (report) ctx_.log().error("USR1: {}", fd.err().message);
            continue;
        }
        site_logs_[i] = std::move(*fd);
        site_log_fd_[i] = site_logs_[i].get();
    }
}

void http_service::on_reopen_logs() noexcept { reopen_site_logs(true); }

http_service::~http_service() = default;

std::unique_ptr<session> http_service::open(accepted_connection&& conn) noexcept {
    try {
        return std::make_unique<http_session>(*this, std::move(conn));
    } catch (...) {
        return nullptr;  // out of memory: the loop closes the connection
    }
}

std::unique_ptr<service> make_http_service(worker_context& ctx) {
    if (!ctx.cfg().app) {
        ctx.log().crit("http: the configuration carries no [http] settings");
        return nullptr;
    }
    const auto& settings = ctx.cfg().app_settings<http_settings>();
    if (std::string why = root_problem(settings); !why.empty()) {
        ctx.log().crit("cannot serve: {}", why);
        ctx.board().slot(ctx.slot_index()).set_exit_reason(why);
        return nullptr;
    }
    return std::make_unique<http_service>(ctx, settings);
}

}  // namespace preforkd::http
