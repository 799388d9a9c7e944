// Sites: name-based virtual hosts ([[site]] tables), and how a request finds its site.
//
// Without any [[site]] the [http] root is the one site, exactly as before sites existed:
// http_settings::sites is then empty and nothing below runs on the request path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <preforkd/config.hpp>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/encoding.hpp"
#include "http/request_parser.hpp"
#include "http/site_rules.hpp"

namespace preforkd::http {

struct http_settings;

// One [[site]] table. Every key but `names` and `root` may also be set in [http], whose
// value is then this site's default.
struct site {
    // Lower case, without a trailing dot: "example.org", "[::1]", "*.example.net".
    std::vector<std::string> names;
    std::string root;
    // The folder, opened by the supervisor at load (O_PATH) like [http] root and inherited by
    // workers. Not owned: a [[site]]'s is `own_root`, the one site without [[site]] uses
    // http_settings::root_fd (one descriptor per folder in every worker, as before sites).
    int root_fd = -1;
    unique_fd own_root;
    std::vector<std::string> index{"index.html"};
    bool serve_hidden = false;
    std::string access_log;  // "" = log.access; this site's own file otherwise
    // The site's own log, opened (O_APPEND) by the supervisor at load so that a path that
    // cannot be opened fails -t and the reload; workers write to it and reopen it by name
    // on USR1. Invalid when access_log is "".
    unique_fd access_fd;

    // ---- Per-site features parsed by parse_site_extras() (site_config.cpp), with the
    // [http] values as defaults; the one site without [[site]] copies [http]'s.
    site_rules rules;            // error_pages, fallback, autoindex, headers, redirects, ...
    encoding_settings encoding;  // precompressed, compress
};

// The per-site request counters of one generation: one shared anonymous mapping made in
// the supervisor when the configuration is loaded, so every worker forked for that
// configuration counts into the same memory. A worker counts in the row of its stripe
// (its scoreboard slot modulo `stripes`), each row starting on its own cache line: two
// workers answering the same site do not pull one line back and forth on every request
// (measured: one shared counter cost ~5% CPU per request with two workers on one site).
class site_counters {
  public:
    static constexpr size_t stripes = 16;

    // Throws std::bad_alloc when the mapping cannot be made.
    explicit site_counters(size_t sites);
    ~site_counters();
    site_counters(const site_counters&) = delete;
    site_counters& operator=(const site_counters&) = delete;

    size_t size() const noexcept { return size_; }
    void bump(size_t site, uint32_t slot) const noexcept {
        if (site < size_) cell(slot % stripes, site).fetch_add(1, std::memory_order_relaxed);
    }
    uint64_t requests(size_t site) const noexcept {
        uint64_t sum = 0;
        if (site < size_)
            for (size_t s = 0; s < stripes; ++s)
                sum += cell(s, site).load(std::memory_order_relaxed);
        return sum;
    }

  private:
    std::atomic<uint64_t>& cell(size_t stripe, size_t site) const noexcept {
        return cells_[stripe * row_ + site];
    }
    std::atomic<uint64_t>* cells_ = nullptr;
    size_t size_ = 0;
    size_t row_ = 0;  // counters per row: size_ rounded up to a cache line
    size_t bytes_ = 0;
};

// The most [[site]] tables one file may have: the counters mapping and the name tables
// stay small, and a generated file gone wrong is caught at -t.
inline constexpr size_t max_sites = 10'000;

struct name_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

// Host -> site index. Exact names are found with one hash lookup; wildcards ("*.example.net",
// kept as ".example.net") by one lookup per label of the host, longest suffix first. Built
// once per configuration; finding allocates nothing.
class site_finder {
  public:
    site_finder() = default;
    // `sites[i].names` must be valid and claimed once (parse_sites checks both).
    explicit site_finder(const std::vector<site>& sites);

    // The site of a request: the host of an absolute-form target (RFC 9112 section 3.2.2:
    // it wins over Host), else the Host field; 0 (the first site) when neither matches.
    uint32_t find(const request_head& h) const noexcept;
    // The site for a Host value (host[:port], any case, a trailing dot allowed); 0 when no
    // site has that name.
    uint32_t find_host(std::string_view host_port) const noexcept;
    bool empty() const noexcept { return exact_.empty() && wildcard_.empty(); }

  private:
    std::unordered_map<std::string, uint32_t, name_hash, std::equal_to<>> exact_;
    std::unordered_map<std::string, uint32_t, name_hash, std::equal_to<>> wildcard_;
};

// The host part of an absolute-form request-target ("http://user@Example.org:8080/x" ->
// "Example.org:8080"): userinfo dropped, port kept (find_host drops it).
std::string_view absolute_target_authority(std::string_view target) noexcept;

// A site name as written in the file -> its canonical form (lower case, no trailing dot),
// or an error saying what is wrong with it. Accepted: a DNS name (letters, digits, '-',
// '_'; labels of 1 to 63 bytes, at most 253 in all), an IPv4 address, "[v6]", or
// "*.suffix" where the suffix is such a name.
result<std::string> canonical_site_name(std::string_view name);

// Reads every [[site]] of `tables` into `http.sites` (none: left empty, the [http] root is
// the one site), with `http`'s values as defaults; opens each root and each own access log.
// Problems are recorded on the sites' readers as `site[N].key` errors; the caller finishes
// them.
void parse_sites(const std::vector<table_reader*>& tables, http_settings& http);

// The per-site features (site rules, content codings): reads them from one [[site]] table
// with [http]'s values as defaults; problems are recorded on `t` as `site[N].key` errors.
void parse_site_extras(table_reader& t, site& s, const http_settings& http);

}  // namespace preforkd::http
