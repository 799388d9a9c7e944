// The [http] table: what the supervisor parses at each (re)load and every worker of that
// generation serves with.
#pragma once

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/detail/cidr.hpp>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "http/encoding.hpp"
#include "http/mime.hpp"
#include "http/site.hpp"
#include "http/site_rules.hpp"

namespace preforkd::http {

struct http_settings {
    std::string root = "/var/www/html";
    // Opened by the supervisor, before privileges are dropped, and inherited by workers:
    // everything is served relative to it.
    unique_fd root_fd;
    std::vector<std::string> index{"index.html"};
    std::chrono::milliseconds keepalive_timeout{5000};  // 0 = no keep-alive
    std::chrono::milliseconds header_timeout{10000};
    uint32_t max_header_bytes = 8192;
    uint64_t max_keepalive_requests = 1000;  // 0 = no limit
    bool serve_hidden = false;
    std::string status_path = "/server-status";        // "" = no status page
    std::string health_path = "/healthz";              // "" = none; 200 ok, 503 while draining
    std::string metrics_path = "/metrics";             // "" = none; the status page's ACL
    std::vector<preforkd::detail::cidr> status_allow;  // the engine's matcher (detail/cidr.hpp)
    // Appended as "; charset=" to the Content-Type of text files ("" = none).
    std::string charset = "utf-8";
    mime_table mime;
    // error_pages, fallback, autoindex, headers, redirects, https_redirect (site_rules.hpp)
    // and the content codings: the defaults of every site (site::rules, site::encoding),
    // reached through http_service::rules() and file_cache::source().
    site_rules rules;
    encoding_settings encoding;
    // The compressed copies' folder: one for the server, whatever the site.
    compress_cache_settings compress_cache;
    // The default of every site's access_log ("" = log.access).
    std::string access_log;

    // The sites, in file order; the first also answers unknown names. Without [[site]] the
    // parse makes one from the [http] values above (sites_configured false); settings built
    // by hand may leave it empty, meaning the same.
    std::vector<site> sites;
    bool sites_configured = false;  // the file has [[site]] tables
    site_finder finder;             // names -> index into sites
    // Requests per site for the status page; null without [[site]].
    std::shared_ptr<const site_counters> site_requests;

    bool status_allowed(const sockaddr_storage& peer) const noexcept {
        return preforkd::detail::trusted(peer, status_allow);
    }
};

// Reads [http] with the reader's getters, validates it, opens the root and loads
// `mime_types` (falling back to a built-in table). Errors come from reader.finish().
result<std::shared_ptr<const http_settings>> parse_http_settings(
    table_reader& reader, const char* mime_types = "/etc/mime.types");

// The same with the [[site]] tables (site.hpp): with any, their roots are opened instead of
// [http]'s, and their errors follow [http]'s.
result<std::shared_ptr<const http_settings>> parse_http_settings(
    table_reader& reader, const std::vector<table_reader*>& sites,
    const char* mime_types = "/etc/mime.types");

// The one site the [http] values make (no names), on http.root_fd (not a copy).
site site_from_http(const http_settings& http);

}  // namespace preforkd::http
