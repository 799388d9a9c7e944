#include "runtime/command_line.hpp"

#include <fmt/format.h>

#include "sys/signals.hpp"

namespace preforkd {

result<command_line> parse_command_line(const std::vector<std::string>& args,
                                        const std::string& default_config) {
    command_line cl;
    cl.config_path = default_config;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        // Options that take a value: "-c FILE", "-cFILE", "--config FILE", "--config=FILE".
        auto value_of = [&](std::string_view shrt, std::string_view lng,
                            std::string& out) -> result<bool> {
            if (a == shrt || a == lng) {
                if (i + 1 >= args.size()) return error(fmt::format("{} needs a value", a));
                out = args[++i];
                return true;
            }
            if (a.size() > shrt.size() && a.compare(0, shrt.size(), shrt) == 0 && a[1] != '-') {
                out = a.substr(shrt.size());
                return true;
            }
            std::string with_eq = std::string(lng) + "=";
            if (a.compare(0, with_eq.size(), with_eq) == 0) {
                out = a.substr(with_eq.size());
                return true;
            }
            return false;
        };
        auto c = value_of("-c", "--config", cl.config_path);
        if (!c) return std::move(c).err();
        if (*c) continue;
        auto s = value_of("-s", "--signal", cl.signal);
        if (!s) return std::move(s).err();
        if (*s) {
            // "upgrade" is no single signal: USR2, then QUIT once the new binary serves.
            if (!sys::signal_for_verb(cl.signal) && cl.signal != "upgrade")
                return error(fmt::format("-s {}: expected {} or upgrade", cl.signal,
                                         sys::signal_verbs(", ")));
            continue;
        }
        if (a == "-F" || a == "--foreground")
            cl.foreground = true;
        else if (a == "-t" || a == "--test")
            cl.test = true;
        else if (a == "--status")
            cl.status = true;
        else if (a == "--watch")
            cl.watch = true;
        else if (a == "-V" || a == "--version")
            cl.version = true;
        else if (a == "-h" || a == "--help")
            cl.help = true;
        else
            return error(fmt::format("unknown argument {}", a));
    }
    if (cl.config_path.empty()) return error("-c: empty file name");
    if (cl.watch && !cl.status) return error("--watch goes with --status");
    if (cl.status && (cl.test || !cl.signal.empty() || cl.foreground))
        return error("--status goes with -c and --watch only");
    return cl;
}

std::string usage(const std::string& program, const std::string& default_config) {
    return fmt::format(
        "usage: {0} [-c FILE] [-F] [-t] [-s {2}|upgrade] [--status [--watch]] [-V] [-h]\n"
        "  -c, --config FILE   configuration file (default {1})\n"
        "  -F, --foreground    stay in the foreground, log to stderr unless configured\n"
        "  -t, --test          validate the configuration, print the result, exit 0/1\n"
        "  -s, --signal SIG    send SIG to the running supervisor named by server.pid_file\n"
        "      --status        print the running server's scoreboard (workers, totals)\n"
        "      --watch         with --status: redraw it every second until Ctrl-C\n"
        "  -V, --version       print the version and exit\n"
        "  -h, --help          this help\n",
        program, default_config, sys::signal_verbs("|"));
}

}  // namespace preforkd
