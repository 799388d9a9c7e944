// The entry point of a preforkd program: the supervisor, its workers, signals, reloads,
// the scoreboard and the logs, serving whatever protocol the application's service speaks.
#pragma once

#include <functional>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/service.hpp>
#include <string>

namespace preforkd {

struct application {
    std::string name = "preforkd";  // program name in usage, errors and logs
    std::string version = "0.0.0";  // printed by -V
    std::string default_config = default_config_path;
    app_schema schema;  // the application's own TOML tables
    // Overrides workers.max_connections when > 0, whatever the file says. A service whose
    // sessions block the worker (blocking_application) sets 1: one connection per process.
    int max_connections = 0;
    // Runs in each worker after fork and privilege drop. nullptr (or an exception) makes
    // the worker exit with a failure, which the supervisor treats as a crash.
    std::function<std::unique_ptr<service>(worker_context&)> make_service;
};

// The whole program: command line, configuration, daemon mode, the supervisor and its
// workers. Returns the process exit status (0 clean stop, 1 configuration or start-up error).
int run(int argc, char** argv, const application& app);

}  // namespace preforkd
