// The pid file: written atomically once the server is ready, read by `-s` and by a second
// start to refuse running twice.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include <preforkd/result.hpp>

namespace preforkd::sys {

// The pid in `path`, or nullopt if the file is missing or holds no number.
std::optional<pid_t> read_pid_file(const std::string& path);

// Writes `pid` to a temporary file beside `path` and renames it over `path`: a reader sees
// the old content or the new, never a half-written number.
result<void> write_pid_file(const std::string& path, pid_t pid);

// True when `pid` is a live process running the same program as this one (its /proc comm
// matches ours): a recycled pid of another program does not count.
bool is_live_instance(pid_t pid);

}  // namespace preforkd::sys
