// `preforkd --status [--watch] [-c FILE]`: the running server's scoreboard in the terminal,
// read from the scoreboard file its supervisor shares (scoreboard.<pid> beside the pid file),
// not from HTTP, so it works for every application on the engine.
#pragma once

#include <preforkd/application.hpp>
#include <string>

namespace preforkd {

// Exit codes as LSB init scripts' `status` action gives them, so that scripts can tell "not
// running" from "cannot tell".
enum class status_exit : int {
    running = 0,
    stale = 1,        // the pid file names a process that is gone, or a stale scoreboard
    not_running = 3,  // no pid in the pid file
    unknown = 4,      // permission denied, no scoreboard, another version, bad configuration
};

struct status_reading {
    status_exit code = status_exit::unknown;
    std::string text;  // the rendered view when running, else one line saying why
};

// One reading of the server whose pid file is `pid_file`. `program` names it in messages.
status_reading read_status(const std::string& pid_file, const std::string& program);

// The command: prints one reading, or with `watch` redraws one each second (the screen
// cleared with ANSI) until SIGINT or SIGTERM, then exits 0.
int run_status_command(const application& app, const std::string& config_path, bool watch);

}  // namespace preforkd
