// The command line: preforkd [-c FILE] [-F] [-t] [-s reload|stop|quit|reopen|upgrade]
// [--status [--watch]] [-V] [-h]
#pragma once

#include <preforkd/result.hpp>
#include <string>
#include <vector>

namespace preforkd {

struct command_line {
    std::string config_path;
    bool foreground = false;
    bool test = false;
    std::string signal;   // -s VERB; empty when absent
    bool status = false;  // --status: print the running server's scoreboard
    bool watch = false;   // --watch (with --status): redraw it each second
    bool version = false;
    bool help = false;
};

// `args` excludes argv[0]. Errors name the offending argument.
result<command_line> parse_command_line(const std::vector<std::string>& args,
                                        const std::string& default_config);

std::string usage(const std::string& program, const std::string& default_config);

}  // namespace preforkd
