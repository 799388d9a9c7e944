// The [tls] table of the config, as plain data. Parsed by parse_tls_settings (tls_config.hpp);
// read by the supervisor, which loads the files it names before it forks.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace preforkd::tls {

// One `{ cert = "...", key = "..." }` entry: paths already resolved against the config's
// folder; `line` is where the entry sits in `file`, for `file:line: tls.certificates[N]`.
struct certificate_files {
    std::string cert;
    std::string key;
    uint32_t line = 0;
};

enum class min_version : uint8_t { tls1_2, tls1_3 };

struct tls_settings {
    std::vector<certificate_files> certificates;  // the first is the default (no SNI match)
    min_version min = min_version::tls1_2;
    std::string ciphers;  // TLS 1.2 cipher list; empty = Mozilla "intermediate"
    bool session_tickets = true;
    bool ktls = true;
    std::chrono::milliseconds handshake_timeout{10'000};
    std::string file;  // the config file, as named in messages
};

}  // namespace preforkd::tls
