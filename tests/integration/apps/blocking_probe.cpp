// A blocking application for the integration tests (examples_test.cpp): each line is a
// command, answered with one line.
//   pid        the worker's pid
//   abort      abort(): the worker dies with its connection
//   throw      an exception out of the handler
//   log TEXT   TEXT in the error log (info), then "logged"
//   retiring   "yes" once the worker is retiring, else "no"
//   tag        [probe] tag of the worker's generation (which configuration it runs)
//   other      echoed
// Its [probe] table makes workers misbehave as they start (in make_service, after the
// privilege drop and before the worker's loop runs):
//   crash_at_start = true   abort(): a worker that fails by itself, every time (a crash loop)
//   fatal_at_start = true   throw: an init that fails, the worker exits with exit_code::fatal
//   start_delay = "500ms"   sleep first: a worker that comes up slowly
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <preforkd/preforkd.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

struct probe_settings {
    bool crash_at_start = false;
    bool fatal_at_start = false;
    preforkd::milliseconds start_delay{0};
    std::string tag;
};

}  // namespace

int main(int argc, char** argv) {
    preforkd::application app = preforkd::blocking_application([](preforkd::connection& c) {
        c.set_timeout(preforkd::milliseconds(0));  // tests hold idle connections open
        while (auto line = c.read_line()) {
            const std::string& l = *line;
            preforkd::result<void> r;
            if (l == "pid") {
                r = c.print("{}\n", ::getpid());
            } else if (l == "abort") {
                std::abort();
            } else if (l == "throw") {
                throw std::runtime_error("asked to throw");
            } else if (l.rfind("log ", 0) == 0) {
                c.log().info("probe: {}", l.substr(4));
                r = c.write_all("logged\n");
            } else if (l == "retiring") {
                r = c.write_all(c.retiring() ? "yes\n" : "no\n");
            } else if (l == "tag") {
                r = c.print("{}\n", c.settings<probe_settings>().tag);
            } else {
                r = c.print("{}\n", l);
            }
            if (!r) return;
            c.count_request();
        }
    });
    app.name = "probe";
    app.version = PREFORKD_VERSION;
    app.schema = preforkd::settings_table<probe_settings>(
        "probe", [](preforkd::table_reader& t, probe_settings& s) {
            s.crash_at_start = t.boolean("crash_at_start", s.crash_at_start);
            s.fatal_at_start = t.boolean("fatal_at_start", s.fatal_at_start);
            s.start_delay = t.duration("start_delay", s.start_delay);
            s.tag = t.string("tag", s.tag);
        });
    // The blocking service, preceded by the misbehaviour the settings ask for: through the
    // public API only, as any application could.
    app.make_service = [inner = app.make_service](preforkd::worker_context& ctx) {
        const auto& s = ctx.cfg().app_settings<probe_settings>();
        if (s.start_delay.count() > 0) std::this_thread::sleep_for(s.start_delay);
        if (s.crash_at_start) std::abort();
        // An init that fails: the worker exits with exit_code::fatal, it cannot serve.
        if (s.fatal_at_start) throw std::runtime_error("probe: the application cannot start");
        return inner(ctx);
    };
    return preforkd::run(argc, argv, app);
}
