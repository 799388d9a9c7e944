#include "supervisor/tls_setup.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <new>
#include <string_view>

#include "tls/tls_settings.hpp"

namespace preforkd {

shared_ticket_ring::~shared_ticket_ring() {
    if (ring_) ::munmap(ring_, sizeof *ring_);
}

result<tls::ticket_key_ring*> shared_ticket_ring::get(int64_t now_s) {
    if (ring_) return ring_;
    void* p = ::mmap(nullptr, sizeof(tls::ticket_key_ring), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return error::from_errno(errno, "tls: mmap of the ticket keys");
    auto* ring = new (p) tls::ticket_key_ring{};
    if (has_inherited_) {
        // The old supervisor's keys, current and previous, as they were at the upgrade. The
        // 12 h clock restarts here: its value was of the old process's clock.
        *ring = inherited_;
        ring->sequence = 0;
        ring->rotated_at = now_s;
        std::memset(&inherited_, 0, sizeof inherited_);
        has_inherited_ = false;
    } else if (!tls::init_ticket_keys(*ring, now_s)) {
        ::munmap(p, sizeof *ring);
        return error("tls: no random bytes for the session ticket keys");
    }
    ring_ = ring;
    return ring_;
}

int shared_ticket_ring::export_for_upgrade() const noexcept {
    if (!ring_) return -1;
    const int fd = ::memfd_create("preforkd-ticket-keys", MFD_CLOEXEC);
    if (fd < 0) return -1;
    const tls::ticket_key_ring copy = tls::snapshot_ticket_keys(*ring_);
    const auto* p = reinterpret_cast<const char*>(&copy);
    size_t done = 0;
    while (done < sizeof copy) {
        const ssize_t n = ::pwrite(fd, p + done, sizeof copy - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            return -1;
        }
        done += static_cast<size_t>(n);
    }
    return fd;
}

void shared_ticket_ring::take_inherited() noexcept {
    const char* v = ::getenv(ticket_keys_env);
    if (!v) return;
    const std::string_view text(v);
    int fd = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
    ::unsetenv(ticket_keys_env);
    if (ec != std::errc() || end != text.data() + text.size() || fd < 3) return;
    // Only a memfd of exactly one ring: anything else under that number is not ours to read.
    struct stat st {};
    tls::ticket_key_ring copy{};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == sizeof copy &&
        ::pread(fd, &copy, sizeof copy, 0) == static_cast<ssize_t>(sizeof copy) &&
        (copy.sequence & 1u) == 0) {
        inherited_ = copy;
        has_inherited_ = true;
    }
    std::memset(&copy, 0, sizeof copy);
    ::close(fd);
}

result<std::shared_ptr<const tls_generation>> build_tls(const config& cfg,
                                                        const tls::ticket_key_ring* ring,
                                                        std::vector<std::string>& warnings) {
    if (!cfg.tls || cfg.tls->certificates.empty()) return std::shared_ptr<const tls_generation>();
    auto creds = tls::load_credentials(*cfg.tls, std::time(nullptr));
    if (!creds) return std::move(creds).err();
    warnings.insert(warnings.end(), creds->warnings.begin(), creds->warnings.end());
    auto shared = std::make_shared<const tls::credential_set>(std::move(*creds));
    auto ctx = tls::tls_context::create(*cfg.tls, shared, ring);
    if (!ctx) return std::move(ctx).err();
    auto out = std::make_shared<tls_generation>();
    out->credentials = std::move(shared);
    out->context = std::move(*ctx);
    return std::shared_ptr<const tls_generation>(std::move(out));
}

}  // namespace preforkd
