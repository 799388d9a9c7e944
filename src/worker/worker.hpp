// A worker's life after fork: shed the supervisor's state, drop privileges, build the
// application's service, run the event loop.
#pragma once

#include <preforkd/application.hpp>

#include "core/worker_start.hpp"

namespace preforkd {

// Never returns into the supervisor's code: the caller _exit()s with the result.
int run_worker(worker_start& ws, const application& app) noexcept;

}  // namespace preforkd
