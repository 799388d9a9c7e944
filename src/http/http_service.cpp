#include "http/http_service.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <preforkd/detail/text.hpp>

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
std::string root_problem(const http_settings& s) {
    struct stat st {};
    // Looking up "." needs search permission on the folder, as serving files beneath it does.
    if (::fstatat(s.root_fd.get(), ".", &st, 0) != 0)
        return fmt::format("http.root {}: {}", preforkd::detail::hex_escaped(s.root),
                           std::strerror(errno));
    if (st.st_nlink == 0)
        return fmt::format("http.root {}: the folder was removed",
                           preforkd::detail::hex_escaped(s.root));
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
}

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
