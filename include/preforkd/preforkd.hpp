// Everything a program embedding preforkd includes: run() and application, the event-driven
// service interface, the blocking connection interface, the configuration and the logs.
#pragma once

#include <preforkd/application.hpp>
#include <preforkd/blocking.hpp>
#include <preforkd/clock.hpp>
#include <preforkd/config.hpp>
#include <preforkd/exit_code.hpp>
#include <preforkd/log.hpp>
#include <preforkd/result.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/service.hpp>
#include <preforkd/transport.hpp>
#include <preforkd/unique_fd.hpp>
#include <preforkd/version.hpp>
