// What `preforkd -s VERB` reads of the configuration: server.pid_file alone.
#pragma once

#include <filesystem>
#include <preforkd/result.hpp>
#include <string>

namespace preforkd {

// server.pid_file of `file` (its default when the file does not set it), resolved as
// load_config does. Only that key is checked: the application's tables are not parsed, so
// a server can be signalled when what its file names (a docroot, a user) has gone since it
// started. A file that cannot be read or is not TOML is an error all the same.
result<std::string> load_pid_file_setting(const std::filesystem::path& file);

}  // namespace preforkd
