// Helpers for the HTTP integration tests: raw exchanges, the access log, a small JSON reader.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "integration/harness.hpp"

namespace preforkd::test {

// One Combined Log Format line, split into its fields.
struct access_entry {
    std::string client;
    std::string time;
    std::string request;  // as logged: escapes kept
    int status = 0;
    std::string bytes;  // "-" or a number
    std::string referer;
    std::string user_agent;
};
std::optional<access_entry> parse_access_line(const std::string& line);
// The access log's lines, without their '\n'. A last line without '\n' is kept (and then
// fails to parse as a complete line would not).
std::vector<std::string> access_log_lines(const server& srv);
// How many access log lines contain `needle`.
size_t count_access_lines(const server& srv, const std::string& needle);

// What came back for bytes sent in one write on a fresh connection: the responses read
// until the server closed or went quiet for `quiet`, and whether it closed.
struct raw_result {
    std::vector<http_response> responses;
    bool closed = false;
    std::string trailing;  // bytes that did not parse as a response
};
raw_result send_raw(uint16_t port, const std::string& bytes, bool head = false,
                    std::chrono::milliseconds quiet = 1500ms);

// A JSON value: enough of RFC 8259 to check the status page. parse_json() refuses anything
// that is not one complete, valid JSON text.
struct json_value {
    enum class kind { null, boolean, number, string, array, object } k = kind::null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<json_value> arr;
    std::map<std::string, json_value> obj;
    const json_value* get(const std::string& key) const;
};
std::optional<json_value> parse_json(const std::string& text);

// The path of an executable found in PATH (or the usual system folders), or "".
std::string find_program(const std::string& name);

}  // namespace preforkd::test
