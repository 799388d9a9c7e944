#include "tls/tls_config.hpp"

#include <fmt/format.h>

#include <preforkd/config.hpp>

namespace preforkd::tls {

namespace {

uint32_t line_of(const toml::node& n, uint32_t fallback) {
    uint32_t line = n.source().begin.line;
    return line ? line : fallback;
}

struct reader {
    const std::string& file;
    const std::filesystem::path& base_dir;
    uint32_t table_line;

    error fail(const toml::node* n, std::string_view key, std::string_view why) const {
        return error(fmt::format("{}:{}: tls.{}: {}", file,
                                 n ? line_of(*n, table_line) : table_line, key, why));
    }
    std::string resolve(std::string_view p) const {
        std::filesystem::path path(p);
        return path.is_absolute() ? path.string() : (base_dir / path).lexically_normal().string();
    }
};

result<certificate_files> parse_entry(const reader& r, const toml::node& n, size_t i) {
    std::string key = fmt::format("certificates[{}]", i);
    const toml::table* t = n.as_table();
    if (!t) return r.fail(&n, key, R"(must be a table { cert = "...", key = "..." })");
    certificate_files f;
    f.line = line_of(n, r.table_line);
    for (auto&& [k, v] : *t) {
        const std::string_view name = k.str();
        if (name != "cert" && name != "key")
            return r.fail(&v, key, fmt::format("unknown key \"{}\" (cert, key)", name));
        const auto* s = v.as_string();
        if (!s || s->get().empty())
            return r.fail(&v, fmt::format("{}.{}", key, name), "must be a non-empty path");
        (name == "cert" ? f.cert : f.key) = r.resolve(s->get());
    }
    if (f.cert.empty() || f.key.empty()) return r.fail(&n, key, "needs both cert and key");
    return f;
}

}  // namespace

result<tls_settings> parse_tls_settings(const toml::table* table, const std::string& file,
                                        const std::filesystem::path& base_dir) {
    tls_settings s;
    s.file = file;
    if (!table) return s;
    const reader r{file, base_dir, line_of(*table, 1)};
    for (auto&& [k, v] : *table) {
        const std::string_view key = k.str();
        if (key == "certificates") {
            const toml::array* a = v.as_array();
            if (!a) return r.fail(&v, key, "must be an array of { cert, key } tables");
            for (size_t i = 0; i < a->size(); ++i) {
                auto entry = parse_entry(r, *a->get(i), i);
                if (!entry) return std::move(entry).err();
                s.certificates.push_back(std::move(*entry));
            }
        } else if (key == "min_version") {
            const auto* str = v.as_string();
            if (str && str->get() == "1.2")
                s.min = min_version::tls1_2;
            else if (str && str->get() == "1.3")
                s.min = min_version::tls1_3;
            else
                return r.fail(&v, key, R"(must be "1.2" or "1.3")");
        } else if (key == "ciphers") {
            const auto* str = v.as_string();
            if (!str) return r.fail(&v, key, "must be a string (an OpenSSL TLS 1.2 cipher list)");
            s.ciphers = str->get();
        } else if (key == "session_tickets" || key == "ktls") {
            const auto* b = v.as_boolean();
            if (!b) return r.fail(&v, key, "must be true or false");
            (key == "ktls" ? s.ktls : s.session_tickets) = b->get();
        } else if (key == "handshake_timeout") {
            result<std::chrono::milliseconds> d = error("");
            if (const auto* str = v.as_string())
                d = parse_duration(str->get());
            else if (const auto* i = v.as_integer(); i && i->get() >= 0 && i->get() <= 3600)
                d = std::chrono::milliseconds(i->get() * 1000);
            else
                d = error(R"(must be a duration (seconds, or a string like "10s"))");
            if (!d) return r.fail(&v, key, d.err().message);
            if (d->count() <= 0) return r.fail(&v, key, "must be more than 0");
            s.handshake_timeout = *d;
        } else {
            return r.fail(&v, key,
                          "unknown key (certificates, min_version, ciphers, session_tickets, "
                          "ktls, handshake_timeout)");
        }
    }
    return s;
}

}  // namespace preforkd::tls
