// preforkd: the prefork engine serving the built-in static HTTP service. The only file
// that sees both the engine (supervisor, workers) and the HTTP service.
#include <preforkd/application.hpp>

#include "http/application.hpp"

int main(int argc, char** argv) {
    return preforkd::run(argc, argv, preforkd::http::make_application());
}
