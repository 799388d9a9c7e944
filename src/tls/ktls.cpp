#include "tls/ktls.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <preforkd/detail/syscall.hpp>

namespace preforkd::tls {

std::string_view to_string(send_path p) noexcept {
    return p == send_path::ktls ? "ktls" : "userspace";
}

bool ulp_list_has_tls(std::string_view list) noexcept {
    size_t i = 0;
    while (i < list.size()) {
        while (i < list.size() && (list[i] == ' ' || list[i] == '\t' || list[i] == '\n')) ++i;
        size_t start = i;
        while (i < list.size() && list[i] != ' ' && list[i] != '\t' && list[i] != '\n') ++i;
        if (list.substr(start, i - start) == "tls") return true;
    }
    return false;
}

bool kernel_offers_tls_ulp() noexcept {
    int fd = ::open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[256];
    ssize_t n = detail::retry_eintr([&] { return ::read(fd, buf, sizeof buf); });
    ::close(fd);
    return n > 0 && ulp_list_has_tls(std::string_view(buf, static_cast<size_t>(n)));
}

bool kernel_offers_tls_ulp_cached() noexcept {
    static const bool offered = kernel_offers_tls_ulp();
    return offered;
}

bool request_ktls(bool ktls_setting, bool kernel_ulp) noexcept {
    return ktls_setting && kernel_ulp;
}

send_path choose_send_path(bool ktls_setting, bool kernel_ulp, bool bio_ktls_send) noexcept {
    return ktls_setting && kernel_ulp && bio_ktls_send ? send_path::ktls : send_path::userspace;
}

}  // namespace preforkd::tls
