// One request being answered: what the router and the handlers read, and the answer they
// leave for the session to send, count and log.
//
// The session builds one on its stack for each request (nothing is allocated for it) and
// hands it to route() (router.hpp), or straight to answer_error() for a request that could
// not be parsed. A handler appends the head and any in-memory body to `out`, or names a file
// to follow it with sendfile, and fills in the status and byte counts.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"

namespace preforkd::http {

class http_service;
struct file_entry;
struct site_rules;
struct site;

struct exchange {
    exchange(http_service& s, std::string& o, std::string& scratch_space,
             const sockaddr_storage& peer_address) noexcept
        : svc(s), out(o), scratch(scratch_space), peer(peer_address) {}

    // ---- the request
    http_service& svc;
    const request_head* head = nullptr;  // null: no head could be parsed (an error answer)
    std::string_view request_line;       // for the access log; may be partial for an error
    int minor = 1;                       // HTTP/1.minor of the answer
    bool head_only = false;              // HEAD: the answer has no content
    bool keep = false;                   // the connection may stay open after the answer
    bool secure = false;                 // the connection came in over TLS
    // The site the request is for: its rules and the root they apply to, set by route()
    // (null and -1 before, and for a request whose head could not be parsed).
    const site_rules* rules = nullptr;
    int root_fd = -1;
    std::string_view path;  // the normalised path (normalize_path) once route() has it
    // The site the request was routed to (route() sets it from the Host or the absolute
    // target); null for an answer given before routing (a head that could not be parsed).
    const site* vhost = nullptr;
    uint32_t site_index = 0;  // vhost's index in http_settings::sites (its file cache key)

    // ---- the answer
    std::string& out;      // the session's queued output: the answer is appended
    std::string& scratch;  // a string of the session's, for rare needs (combined fields)
    const sockaddr_storage& peer;
    int status = 0;
    uint64_t head_bytes = 0;
    uint64_t body_bytes = 0;           // in `out`, or from `file` when it is set
    std::shared_ptr<file_entry> file;  // a body sent with sendfile after `out`
    uint64_t file_offset = 0;
    uint64_t drain = 0;   // request body bytes to read past before the next request
    bool linger = false;  // closing after an error: discard late input before the close
};

}  // namespace preforkd::http
