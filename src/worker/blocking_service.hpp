// The blocking adapter: a service whose sessions run a connection_handler to the end inside
// the worker's event loop (see <preforkd/blocking.hpp>).
#pragma once

#include <memory>
#include <preforkd/blocking.hpp>
#include <preforkd/service.hpp>

namespace preforkd::detail {

// nullptr (with a crit log line) if the worker's signals cannot be watched.
std::unique_ptr<service> make_blocking_service(worker_context& ctx, connection_handler handler);

}  // namespace preforkd::detail
