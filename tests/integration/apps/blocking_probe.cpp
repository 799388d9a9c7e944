// A blocking application for the integration tests (examples_test.cpp): each line is a
// command, answered with one line.
//   pid        the worker's pid
//   abort      abort(): the worker dies with its connection
//   throw      an exception out of the handler
//   log TEXT   TEXT in the error log (info), then "logged"
//   retiring   "yes" once the worker is retiring, else "no"
//   other      echoed
#include <unistd.h>

#include <cstdlib>
#include <preforkd/preforkd.hpp>
#include <stdexcept>
#include <string>

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
            } else {
                r = c.print("{}\n", l);
            }
            if (!r) return;
            c.count_request();
        }
    });
    app.name = "probe";
    app.version = PREFORKD_VERSION;
    return preforkd::run(argc, argv, app);
}
