// The built-in static file server as a preforkd application: its [http] table and its service.
#pragma once

#include <preforkd/application.hpp>

namespace preforkd::http {

application make_application();

}  // namespace preforkd::http
