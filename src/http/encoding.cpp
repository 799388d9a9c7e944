#include "http/encoding.hpp"

#include <fcntl.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <preforkd/detail/text.hpp>

namespace preforkd::http {

namespace {

std::vector<coding> read_codings(table_reader& r, const char* key,
                                 const std::vector<coding>& fallback) {
    std::vector<std::string> names;
    names.reserve(fallback.size());
    for (coding c : fallback) names.emplace_back(coding_name(c));
    names = r.strings(key, std::move(names));
    std::vector<coding> out;
    for (const std::string& n : names) {
        coding c = coding::identity;
        if (!coding_from_name(n, c)) {
            r.fail(key, fmt::format("\"{}\": must be \"br\", \"zstd\" or \"gzip\"",
                                    preforkd::detail::hex_escaped(n, "\"")));
            return fallback;
        }
        if ((encoding_settings::mask_of(out) & coding_bit(c)) != 0) {
            r.fail(key, fmt::format("\"{}\" is named twice", n));
            return fallback;
        }
        out.push_back(c);
    }
    return out;
}

}  // namespace

encoding_settings parse_encoding_settings(table_reader& r, const encoding_settings& defaults) {
    encoding_settings s;
    s.precompressed = read_codings(r, "precompressed", defaults.precompressed);
    s.compress = read_codings(r, "compress", defaults.compress);
    return s;
}

bool parse_byte_size(std::string_view text, uint64_t& out) noexcept {
    text = preforkd::detail::trim_ows(text);
    size_t i = 0;
    uint64_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (v > (uint64_t{1} << 50)) return false;
        v = v * 10 + static_cast<uint64_t>(text[i] - '0');
        ++i;
    }
    if (i == 0) return false;
    std::string_view unit = preforkd::detail::trim_ows(text.substr(i));
    unsigned shift = 0;
    if (unit.empty() || unit == "B")
        shift = 0;
    else if (unit == "K" || unit == "KiB")
        shift = 10;
    else if (unit == "M" || unit == "MiB")
        shift = 20;
    else if (unit == "G" || unit == "GiB")
        shift = 30;
    else
        return false;
    if (v > (uint64_t{1} << (62 - shift))) return false;
    out = v << shift;
    return true;
}

void parse_compress_cache_settings(table_reader& r, bool needed, compress_cache_settings& out) {
    out.path = r.path("compress_cache", out.path);
    for (const char* key : {"compress_cache_max", "compress_max_size"}) {
        const bool is_max = key[9] == 'c';
        uint64_t& target = is_max ? out.max_bytes : out.max_file_size;
        std::string text = r.string(key, "");
        if (text.empty()) continue;
        uint64_t v = 0;
        if (!parse_byte_size(text, v) || v == 0) {
            r.fail(key, "must be a size such as \"256MiB\", \"64KiB\" or \"1048576\" (bytes)");
            continue;
        }
        target = v;
    }
    if (needed) open_compress_cache(r, out);
}

void open_compress_cache(table_reader& r, compress_cache_settings& out) {
    if (out.path.empty() || out.path[0] != '/') {
        r.fail("compress_cache", "must name a folder (an absolute path)");
        return;
    }
    // Like http.root: resolved once by the supervisor; workers create files beneath it with
    // their own rights (the folder belongs to the service user: see packaging).
    int fd = ::open(out.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        r.fail("compress_cache",
               fmt::format("{}: {}", preforkd::detail::hex_escaped(out.path), std::strerror(err)));
        return;
    }
    out.dir_fd.reset(fd);
}

bool compressible_type(std::string_view t) noexcept {
    t = t.substr(0, t.find(';'));
    t = preforkd::detail::trim_ows(t);
    if (t.substr(0, 5) == "text/") return true;
    for (std::string_view s :
         {"application/javascript", "application/x-javascript", "application/json",
          "application/ld+json", "application/manifest+json", "application/xml",
          "application/xhtml+xml", "application/rss+xml", "application/atom+xml", "image/svg+xml"})
        if (t == s) return true;
    return false;
}

}  // namespace preforkd::http
