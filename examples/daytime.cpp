// daytime: answers every line it receives with the time of day, in a format set in TOML.
// Event-driven: each connection is a session on its worker's epoll loop, so one worker holds
// many connections at once (workers.max_connections).
//
//     build/examples/daytime -F -c examples/daytime.toml         then: nc 127.0.0.1 7013
#include <cerrno>
#include <ctime>
#include <memory>
#include <new>
#include <preforkd/preforkd.hpp>
#include <string>

using namespace preforkd;

namespace {

struct daytime_settings {
    std::string format = "%Y-%m-%dT%H:%M:%SZ";  // strftime(3)
    bool utc = true;
    milliseconds idle_timeout{10'000};  // a connection silent this long is closed
};

class daytime_session final : public session {
  public:
    daytime_session(accepted_connection&& conn, worker_context& ctx)
        : io_(*conn.io), ctx_(ctx), s_(ctx.cfg().app_settings<daytime_settings>()) {
        set_deadline(ctx_.now_ms() + s_.idle_timeout.count());
    }

    bool on_io(uint32_t) noexcept override {
        char buf[1024];
        for (;;) {  // edge-triggered: read until EAGAIN
            ssize_t n = io_.read(buf, sizeof buf);
            if (n == 0) return false;  // the client is done
            if (n < 0) return errno == EAGAIN;
            for (ssize_t i = 0; i < n; ++i)
                if (buf[i] == '\n' && !answer()) return false;
        }
    }
    bool on_deadline() noexcept override { return false; }  // idle for too long
    // Retiring: the next line is answered, then the connection closes (or at its deadline).
    bool on_retire() noexcept override {
        retiring_ = true;
        return true;
    }

  private:
    bool answer() noexcept {
        std::time_t now = std::time(nullptr);
        std::tm tm{};
        (s_.utc ? ::gmtime_r : ::localtime_r)(&now, &tm);
        char out[256];
        size_t len = std::strftime(out, sizeof out - 1, s_.format.c_str(), &tm);
        out[len++] = '\n';
        // A short answer fits the socket buffer of a client that reads: drop one that does not.
        if (io_.write(out, len) != static_cast<ssize_t>(len)) return false;
        ctx_.count_request(len);
        set_deadline(ctx_.now_ms() + s_.idle_timeout.count());
        return !retiring_;
    }

    transport& io_;  // the worker's: valid while this session lives
    worker_context& ctx_;
    const daytime_settings& s_;  // this worker's generation: a reload starts new workers
    bool retiring_ = false;
};

class daytime_service final : public service {
  public:
    explicit daytime_service(worker_context& ctx) : ctx_(ctx) {}
    std::unique_ptr<session> open(accepted_connection&& conn) noexcept override {
        return std::unique_ptr<session>(new (std::nothrow) daytime_session(std::move(conn), ctx_));
    }

  private:
    worker_context& ctx_;
};

}  // namespace

int main(int argc, char** argv) {
    application app;
    app.name = "daytime";
    app.version = PREFORKD_VERSION;
    app.default_config = "daytime.toml";
    app.schema =
        settings_table<daytime_settings>("daytime", [](table_reader& t, daytime_settings& s) {
            s.format = t.string("format", s.format);
            if (s.format.empty() || s.format.size() > 100)
                t.fail("format", "must have 1 to 100 characters");
            s.utc = t.boolean("utc", s.utc);
            s.idle_timeout = t.duration("idle_timeout", s.idle_timeout);
        });
    app.make_service = [](worker_context& ctx) { return std::make_unique<daytime_service>(ctx); };
    return run(argc, argv, app);
}
