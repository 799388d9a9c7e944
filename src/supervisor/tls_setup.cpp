#include "supervisor/tls_setup.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <ctime>
#include <new>

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
    if (!tls::init_ticket_keys(*ring, now_s)) {
        ::munmap(p, sizeof *ring);
        return error("tls: no random bytes for the session ticket keys");
    }
    ring_ = ring;
    return ring_;
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
