#include "http/accept_encoding.hpp"

#include <preforkd/detail/text.hpp>

#include "http/request_parser.hpp"

namespace preforkd::http {

namespace {

using preforkd::detail::trim_ows;

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths; -1 if bad.
int parse_qvalue(std::string_view s) noexcept {
    if (s.empty() || s.size() > 5 || (s[0] != '0' && s[0] != '1')) return -1;
    int v = (s[0] - '0') * 1000;
    if (s.size() == 1) return v;
    if (s[1] != '.') return -1;
    int scale = 100;
    for (size_t i = 2; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v += (s[i] - '0') * scale;
        scale /= 10;
    }
    return v > 1000 ? -1 : v;
}

// One member "coding *( OWS ';' OWS param )": its coding and weight, or false if malformed.
bool parse_member(std::string_view m, std::string_view& name, int& q) noexcept {
    size_t semi = m.find(';');
    name = trim_ows(m.substr(0, semi));
    if (name.empty()) return false;
    for (char c : name)
        if (!detail::is_tchar(static_cast<unsigned char>(c))) return false;
    q = 1000;
    while (semi != std::string_view::npos) {
        m.remove_prefix(semi + 1);
        semi = m.find(';');
        std::string_view param = trim_ows(m.substr(0, semi));
        if (param.empty()) continue;  // "gzip;;q=1": lenient, as most servers are
        size_t eq = param.find('=');
        if (eq == std::string_view::npos) return false;
        std::string_view key = trim_ows(param.substr(0, eq));
        if (key.size() == 1 && (key[0] == 'q' || key[0] == 'Q')) {
            q = parse_qvalue(trim_ows(param.substr(eq + 1)));
            if (q < 0) return false;
        }
    }
    return true;
}

}  // namespace

std::string_view coding_name(coding c) noexcept {
    switch (c) {
        case coding::br:
            return "br";
        case coding::zstd:
            return "zstd";
        case coding::gzip:
            return "gzip";
        case coding::identity:
            break;
    }
    return "identity";
}

std::string_view coding_suffix(coding c) noexcept {
    switch (c) {
        case coding::br:
            return ".br";
        case coding::zstd:
            return ".zst";
        case coding::gzip:
            return ".gz";
        case coding::identity:
            break;
    }
    return "";
}

bool coding_from_name(std::string_view name, coding& out) noexcept {
    for (coding c : {coding::br, coding::zstd, coding::gzip}) {
        if (name == coding_name(c)) {
            out = c;
            return true;
        }
    }
    return false;
}

int accept_encoding::quality(coding c) const noexcept {
    const int16_t own = q[static_cast<size_t>(c)];
    if (own >= 0) return own;
    if (any >= 0) return any;
    // Identity unnamed is acceptable but the least wanted: "gzip;q=0.5" asks for gzip.
    return c == coding::identity ? 1 : 0;
}

accept_encoding parse_accept_encoding(std::string_view value) noexcept {
    accept_encoding ae;
    while (!value.empty()) {
        size_t comma = value.find(',');
        std::string_view member = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        std::string_view name;
        int q = 0;
        if (!parse_member(member, name, q)) continue;
        int16_t* slot = nullptr;
        if (name == "*")
            slot = &ae.any;
        else if (detail::iequals(name, "br"))
            slot = &ae.q[static_cast<size_t>(coding::br)];
        else if (detail::iequals(name, "zstd"))
            slot = &ae.q[static_cast<size_t>(coding::zstd)];
        else if (detail::iequals(name, "gzip") || detail::iequals(name, "x-gzip"))
            slot = &ae.q[static_cast<size_t>(coding::gzip)];
        else if (detail::iequals(name, "identity"))
            slot = &ae.q[static_cast<size_t>(coding::identity)];
        if (slot != nullptr && *slot < 0) *slot = static_cast<int16_t>(q);
    }
    return ae;
}

coding choose_coding(const accept_encoding& ae, bool present, unsigned available,
                     const coding* order, size_t order_size) noexcept {
    if (!present) return coding::identity;
    coding best = coding::identity;
    int best_q = 0;
    for (size_t i = 0; i < order_size; ++i) {
        const coding c = order[i];
        if (c == coding::identity || (available & coding_bit(c)) == 0) continue;
        const int q = ae.quality(c);
        if (q > best_q) {
            best = c;
            best_q = q;
        }
    }
    // Identity wins only with a strictly higher weight ("br;q=0.5, identity").
    if (ae.quality(coding::identity) > best_q) return coding::identity;
    return best;
}

}  // namespace preforkd::http
