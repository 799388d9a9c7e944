#include "http/site.hpp"

#include <arpa/inet.h>
#include <sys/mman.h>

#include <new>

namespace preforkd::http {

namespace {

// RFC 1035 section 2.3.4 limits; '_' is allowed too (service names, some internal hosts).
constexpr size_t max_name = 253;
constexpr size_t max_label = 63;

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool dns_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > max_name) return false;
    size_t label = 0;
    for (char c : n) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > max_label) return false;
    }
    return label > 0;
}

}  // namespace

site_counters::site_counters(size_t sites) : size_(sites) {
    if (sites == 0) return;
    constexpr size_t per_line = 64 / sizeof(std::atomic<uint64_t>);
    row_ = (sites + per_line - 1) / per_line * per_line;
    bytes_ = stripes * row_ * sizeof(std::atomic<uint64_t>);
    // Shared and anonymous: made before the workers fork, so all of them (and only they and
    // the supervisor) see the same cells; the generation's last reference unmaps it. The
    // kernel gives zeroed pages: every counter starts at 0.
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    cells_ = static_cast<std::atomic<uint64_t>*>(p);
    for (size_t i = 0; i < stripes * row_; ++i) new (&cells_[i]) std::atomic<uint64_t>(0);
}

site_counters::~site_counters() {
    if (cells_) ::munmap(cells_, bytes_);
}

result<std::string> canonical_site_name(std::string_view name) {
    std::string n(name);
    for (char& c : n) c = lower(c);
    if (n.size() > 1 && n.back() == '.') n.pop_back();  // "example.org." is example.org
    if (!n.empty() && n.front() == '[') {
        in6_addr a{};
        if (n.back() == ']' && n.size() > 2 &&
            ::inet_pton(AF_INET6, n.substr(1, n.size() - 2).c_str(), &a) == 1)
            return n;
        return error("is not an IPv6 address in brackets");
    }
    if (n.rfind("*.", 0) == 0) {
        if (dns_name(std::string_view(n).substr(2))) return n;
        return error("must be \"*.\" followed by a host name");
    }
    if (n.find('*') != std::string::npos)
        return error("may only start with \"*.\" (a wildcard is a whole leading label)");
    if (!dns_name(n))
        return error(
            "is not a host name (letters, digits, '-', '_' in dot-separated labels of 1 to 63 "
            "bytes)");
    return n;
}

site_finder::site_finder(const std::vector<site>& sites) {
    for (size_t i = 0; i < sites.size(); ++i) {
        for (const std::string& n : sites[i].names) {
            if (n.rfind("*.", 0) == 0)
                wildcard_.emplace(n.substr(1), static_cast<uint32_t>(i));  // ".example.net"
            else
                exact_.emplace(n, static_cast<uint32_t>(i));
        }
    }
}

std::string_view absolute_target_authority(std::string_view target) noexcept {
    size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return {};
    target.remove_prefix(scheme_end + 3);
    target = target.substr(0, target.find_first_of("/?#"));
    size_t at = target.rfind('@');  // userinfo (deprecated, RFC 9110 section 4.2.4)
    if (at != std::string_view::npos) target.remove_prefix(at + 1);
    return target;
}

uint32_t site_finder::find(const request_head& h) const noexcept {
    if (h.form == target_form::absolute) return find_host(absolute_target_authority(h.target));
    // HTTP/1.0 may come without Host: the first site, as for an unknown name.
    return h.has_host ? find_host(h.host) : 0;
}

uint32_t site_finder::find_host(std::string_view host) const noexcept {
    if (host.empty()) return 0;
    if (host.front() == '[') {
        size_t close = host.find(']');
        if (close == std::string_view::npos) return 0;
        host = host.substr(0, close + 1);
    } else {
        host = host.substr(0, host.rfind(':'));
    }
    if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
    // Lower-cased on the stack: no allocation per request. Longer than any valid name: no
    // site has it.
    char buf[max_name + 1];
    if (host.empty() || host.size() > max_name) return 0;
    for (size_t i = 0; i < host.size(); ++i) buf[i] = lower(host[i]);
    const std::string_view key(buf, host.size());
    if (auto it = exact_.find(key); it != exact_.end()) return it->second;
    if (wildcard_.empty()) return 0;
    // Longest suffix first: ".b.example.net" before ".example.net".
    for (size_t dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.', dot + 1)) {
        if (auto it = wildcard_.find(key.substr(dot)); it != wildcard_.end()) return it->second;
    }
    return 0;
}

}  // namespace preforkd::http
