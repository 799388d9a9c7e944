// What the supervisor hands a freshly forked worker: the contract between the two
// libraries. The worker reads nothing else from its parent (and never the config file).
#pragma once

#include <sys/types.h>

#include <functional>
#include <preforkd/config.hpp>
#include <preforkd/scoreboard.hpp>
#include <string>
#include <vector>

#include "sys/privileges.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX, kept out of this header

namespace preforkd {

struct worker_start {
    const config* cfg = nullptr;  // this worker's generation
    std::vector<int> listeners;   // one fd per cfg->server.listen entry, same order
    scoreboard* board = nullptr;
    uint32_t slot = 0;
    uint32_t generation = 0;
    pid_t supervisor = 0;
    sys::credentials creds;
    int error_log_fd = -1;         // -1: stderr
    std::string error_log_target;  // reopened by path on USR1
    int access_log_fd = -1;        // -1: off
    std::string access_log_target;
    std::vector<int> close_fds;  // the supervisor's own descriptors, closed first thing
    // The generation's TLS context, built by the supervisor before the fork (null without tls
    // listeners): the worker never opens a certificate or key file.
    ssl_ctx_st* tls_ctx = nullptr;
};

// The worker's whole life; returns its exit status (see exit_code.hpp).
using worker_entry = std::function<int(worker_start&)>;

}  // namespace preforkd
