// [tls] from TOML into tls_settings. Phase 2 calls this from the config reader (the engine's,
// since TLS belongs to the engine) with the file's [tls] table; toml++ stays private to src/.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <preforkd/result.hpp>
#include <string>

#include "tls/tls_settings.hpp"

namespace preforkd::tls {

// `table` may be null (no [tls] in the file: the defaults, no certificates). `file` names the
// config in messages (`file:line: tls.key: ...`); relative cert/key paths are resolved against
// `base_dir`. Unknown keys are errors, as everywhere in the config.
result<tls_settings> parse_tls_settings(const toml::table* table, const std::string& file,
                                        const std::filesystem::path& base_dir);

}  // namespace preforkd::tls
