// The supervisor's side of TLS: the certificates and the SSL_CTX of a generation, built before
// any worker of it forks (workers inherit them and never open a key file), and the session
// ticket keys in a MAP_SHARED page every worker reads.
#pragma once

#include <cstdint>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/result.hpp>
#include <string>
#include <vector>

#include "tls/context.hpp"
#include "tls/credentials.hpp"
#include "tls/ticket_keys.hpp"

namespace preforkd {

// The ticket key ring in its own shared anonymous page: mapped and filled once (the first
// configuration with tickets), rotated by the supervisor on reload and at most every 12 h.
class shared_ticket_ring {
  public:
    shared_ticket_ring() = default;
    shared_ticket_ring(const shared_ticket_ring&) = delete;
    shared_ticket_ring& operator=(const shared_ticket_ring&) = delete;
    ~shared_ticket_ring();

    // The ring, mapped and keyed on first use: with the keys handed over by the supervisor
    // this one replaces (take_inherited), else fresh random ones.
    result<tls::ticket_key_ring*> get(int64_t now_s);
    // Null until get() succeeded once.
    tls::ticket_key_ring* mapped() const noexcept { return ring_; }

    // Binary upgrade (USR2), so that tickets issued before it resume after it. The old
    // supervisor copies its ring into a memfd (memory, never on disk) that only the new
    // binary inherits, named by ticket_keys_env; the new one reads it at start and closes
    // it. A copy, not the page itself: each supervisor alone writes its own ring.
    // -1 when there is no ring yet (nothing to hand over) or on failure.
    int export_for_upgrade() const noexcept;
    // Takes (and unsets) ticket_keys_env: call before anything counts the open descriptors.
    void take_inherited() noexcept;
    bool inherited() const noexcept { return has_inherited_; }

  private:
    tls::ticket_key_ring* ring_ = nullptr;
    tls::ticket_key_ring inherited_{};
    bool has_inherited_ = false;
};

inline constexpr const char* ticket_keys_env = "PREFORKD_TICKET_KEYS";

struct tls_generation {
    std::shared_ptr<const tls::credential_set> credentials;
    tls::tls_context context;
};

// Loads the certificates of cfg's [tls] and builds the context: null when [tls] lists no
// certificates. `warnings` gets the expired / expiring ones. Errors are
// `file:line: tls.certificates[N] ...`, and nothing is changed by one.
result<std::shared_ptr<const tls_generation>> build_tls(const config& cfg,
                                                        const tls::ticket_key_ring* ring,
                                                        std::vector<std::string>& warnings);

}  // namespace preforkd
