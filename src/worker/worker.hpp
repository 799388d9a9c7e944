// A worker's life after fork: shed the supervisor's state, drop privileges, build the
// application's service, run the event loop.
#pragma once

#include <cstdint>
#include <preforkd/application.hpp>

#include "core/worker_start.hpp"

namespace preforkd {

// The descriptors a worker of `max_connections` wants when workers.rlimit_nofile is 0 (auto):
// one per connection, one more per file being sent, and 64 of its own (listeners, epoll,
// signalfd, logs, the docroot) with room to spare.
constexpr uint64_t nofile_for_connections(uint64_t max_connections) noexcept {
    return 2 * max_connections + 64;
}

// Never returns into the supervisor's code: the caller _exit()s with the result.
int run_worker(worker_start& ws, const application& app) noexcept;

}  // namespace preforkd
