#include "http/application.hpp"

#include "http/http_config.hpp"
#include "http/session.hpp"

namespace preforkd::http {

application make_application() {
    application app;
    app.name = "preforkd";
    app.version = PREFORKD_VERSION;
    app.schema.tables = {"http"};
    app.schema.arrays = {"site"};
    app.schema.parse = [](app_tables& tables) -> result<std::shared_ptr<const void>> {
        auto settings = parse_http_settings(tables.table("http"), tables.array("site"));
        if (!settings) return std::move(settings).err();
        for (const site& s : (*settings)->sites)
            if (!s.access_log.empty()) tables.log_file(s.access_log);
        return std::shared_ptr<const void>(std::move(*settings));
    };
    app.make_service = [](worker_context& ctx) { return make_http_service(ctx); };
    return app;
}

}  // namespace preforkd::http
