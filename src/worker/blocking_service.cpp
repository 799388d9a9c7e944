#include "worker/blocking_service.hpp"

#include <exception>
#include <new>

#include "worker/signal_watch.hpp"

namespace preforkd {
namespace detail {
namespace {

class blocking_service final : public service {
  public:
    blocking_service(worker_context& ctx, connection_handler handler) noexcept
        : ctx_(ctx),
          handler_(std::move(handler)),
          signals_(ctx, ctx.cfg().workers.graceful_timeout.count()) {}

    result<void> start() { return signals_.open(); }

    std::unique_ptr<session> open(accepted_connection&& conn) noexcept override;

    // Runs the handler for one connection, to the end.
    void serve(accepted_connection&& ac) noexcept {
        // Begun before the handler started (e.g. QUIT in the same loop turn as the accept):
        // the graceful timeout runs from now.
        if (ctx_.retiring()) signals_.retire(ctx_.now_ms());
        connection c(std::move(ac), ctx_, &signals_);
        try {
            handler_(c);
        } catch (const std::exception& e) {
            ctx_.log().error("connection from {}: the handler threw: {}", c.peer_address(),
                             e.what());
        } catch (...) {
            ctx_.log().error("connection from {}: the handler threw", c.peer_address());
        }
        c.finish();
    }

  private:
    worker_context& ctx_;
    connection_handler handler_;
    signal_watch signals_;
};

// The loop calls on_io() once the new socket is in its epoll set (a fresh connection is
// writable at once), after it has counted the connection: the scoreboard shows the worker
// busy while the handler runs, and with max_connections = 1 the listeners are off meanwhile.
class blocking_session final : public session {
  public:
    blocking_session(blocking_service& svc, accepted_connection&& conn) noexcept
        : svc_(svc), conn_(std::move(conn)) {
        set_busy(true);
    }

    bool on_io(uint32_t) noexcept override {
        svc_.serve(std::move(conn_));
        return false;
    }
    bool on_deadline() noexcept override { return true; }  // no deadline is ever set
    // Accepted before the retire began: the client is connected and waiting, so it is
    // served, with connection::retiring() true from the start.
    bool on_retire() noexcept override { return true; }

  private:
    blocking_service& svc_;
    accepted_connection conn_;
};

std::unique_ptr<session> blocking_service::open(accepted_connection&& conn) noexcept {
    return std::unique_ptr<session>(new (std::nothrow) blocking_session(*this, std::move(conn)));
}

}  // namespace

std::unique_ptr<service> make_blocking_service(worker_context& ctx, connection_handler handler) {
    auto svc = std::make_unique<blocking_service>(ctx, std::move(handler));
    if (auto r = svc->start(); !r) {
        ctx.log().crit("cannot watch the worker's signals: {}", r.err().message);
        return nullptr;
    }
    return svc;
}

}  // namespace detail

application blocking_application(connection_handler handler) {
    application app;
    app.max_connections = 1;
    app.make_service = [handler = std::move(handler)](worker_context& ctx) {
        return detail::make_blocking_service(ctx, handler);
    };
    return app;
}

}  // namespace preforkd
