#include "http/application.hpp"

namespace preforkd::http {

application make_application() {
    application app;
    app.version = PREFORKD_VERSION;
    return app;
}

}  // namespace preforkd::http
