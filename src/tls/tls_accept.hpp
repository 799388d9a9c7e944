// What the worker runs for a new connection on a `tls` listener before the protocol sees it:
// look at the first bytes (plain HTTP gets its 400, garbage is dropped), then the handshake,
// all non-blocking and bounded by one deadline (handshake_timeout from the accept).
#pragma once

#include <chrono>

#include "tls/tls_transport.hpp"

namespace preforkd::tls {

enum class accept_status {
    in_progress,          // wait for wants() readiness or the deadline, then step() again
    established,          // hand the transport to the protocol
    answered_plain_http,  // the 400 went out and our side is shut: close (lingering)
    rejected,             // garbage, a failed handshake or the deadline: close
};

class tls_accept {
  public:
    using clock = std::chrono::steady_clock;

    tls_accept(tls_transport& transport, clock::time_point deadline) noexcept
        : transport_(transport), deadline_(deadline) {}

    // One step; `now` checked against the deadline first. Counts a late or garbage start as
    // a TLS failure in the transport's counters (a failed handshake counts itself).
    accept_status step(clock::time_point now) noexcept;

    readiness wants() const noexcept { return wants_; }
    clock::time_point deadline() const noexcept { return deadline_; }

  private:
    tls_transport& transport_;
    clock::time_point deadline_;
    readiness wants_ = readiness::read;
    bool classified_ = false;
};

}  // namespace preforkd::tls
