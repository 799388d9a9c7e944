// What start-up needs of the file system, checked by `-t`, at start and on every reload
// before anything changes: so that `-t` passing is the promise that a start or reload will
// not fail on these, and a failure names `file:line: key` like a load error.
#pragma once

#include <preforkd/config.hpp>
#include <preforkd/result.hpp>

namespace preforkd {

// - log.error and log.access (paths): not a folder, and in a folder that exists (start-up
//   opens them with O_CREAT but creates no folder: packages and admins make /var/log/x).
// - server.pid_file: not a folder; its missing folders are created at start-up and reload,
//   so only an ancestor that exists as something other than a folder is an error.
// - unix listen entries: in a folder that exists, and not a file of another kind.
// Nothing is created or opened: checking a file never changes it.
result<void> check_start_paths(const config& cfg);

}  // namespace preforkd
