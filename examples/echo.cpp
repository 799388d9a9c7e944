// echo: a line-echo server on preforkd's engine, one connection per worker process.
//
//     build/examples/echo -F -c examples/echo.toml         then: nc 127.0.0.1 7007
//
// preforkd::run() brings the whole supervisor: pre-forking, respawn, HUP reload, TTIN/TTOU,
// QUIT/TERM, USR1, spare scaling, daemon mode, -t and -s. This file is the protocol and its
// [echo] table.
#include <cstdint>
#include <preforkd/preforkd.hpp>
#include <string>

namespace {

struct echo_settings {
    std::string prefix;                      // written before every echoed line
    preforkd::milliseconds timeout{30'000};  // a client silent this long is dropped
    int64_t max_line = 4096;                 // bytes without the newline; longer ends it
};

void read_settings(preforkd::table_reader& t, echo_settings& s) {
    s.prefix = t.string("prefix", s.prefix);
    s.timeout = t.duration("timeout", s.timeout);
    s.max_line = t.integer("max_line", s.max_line, 1, 1 << 20);
}

void echo(preforkd::connection& c) {
    // The settings of this worker's generation: after a reload, new workers get the new ones.
    const auto& s = c.settings<echo_settings>();
    c.set_timeout(s.timeout);
    for (;;) {
        // read_line's limit counts the terminator ("\r\n"); max_line does not.
        auto line = c.read_line(static_cast<size_t>(s.max_line) + 2);
        if (!line || line->size() > static_cast<size_t>(s.max_line)) {
            if (line || line.err().code == preforkd::io_errc::line_too_long)
                (void)c.write_all("line too long\n");
            return;  // end of input, timeout or stop: nothing more to say
        }
        if (!c.print("{}{}\n", s.prefix, *line)) return;
        c.count_request();         // a line is a request on the scoreboard
        if (c.retiring()) return;  // QUIT or reload: the line in hand is answered, let go
    }
}

}  // namespace

int main(int argc, char** argv) {
    preforkd::application app = preforkd::blocking_application(echo);
    app.name = "echo";
    app.version = PREFORKD_VERSION;
    app.default_config = "echo.toml";
    app.schema = preforkd::settings_table<echo_settings>("echo", read_settings);
    return preforkd::run(argc, argv, app);
}
