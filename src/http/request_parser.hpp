// An incremental HTTP/1.1 request-head parser (RFC 9112), bytes in, a request_head out.
//
// The caller keeps every byte of the request received so far in one buffer and calls
// parse() again each time that buffer grows; the parser resumes where it stopped, so a
// head split at any point parses exactly like one read in one piece. It never looks past
// the bytes it is given, allocates nothing, and keeps offsets rather than pointers while
// it waits, so the caller may move the buffer between calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace preforkd::http {

enum class method_t : uint8_t {
    get,
    head,
    post,
    put,
    delete_,
    connect,
    options,
    trace,
    patch,
    other
};

// RFC 9112 section 3.2: the four forms of request-target.
enum class target_form : uint8_t { origin, absolute, authority, asterisk };

// The request head once parse() returned done. Views point into the caller's buffer as it
// was at that last call.
struct request_head {
    method_t method = method_t::other;
    std::string_view method_name;
    std::string_view target;
    target_form form = target_form::origin;
    int version_minor = 1;          // HTTP/1.x; 1.2 and later minors are served as 1.1
    std::string_view request_line;  // without its line ending, for the access log

    bool has_host = false;
    std::string_view host;
    bool connection_close = false;       // a `close` token in Connection
    bool connection_keep_alive = false;  // a `keep-alive` token in Connection
    bool has_content_length = false;
    uint64_t content_length = 0;
    bool has_transfer_encoding = false;
    bool transfer_encoding_chunked_only = false;  // exactly one coding, "chunked"

    // Headers the static file handler reads; empty when absent, the first line's value when
    // repeated. Repeats are reported: a repeated Range, If-Modified-Since or If-Range is
    // ignored rather than guessed at, and repeated If-None-Match lines are combined into
    // one list (RFC 9110 section 5.3) with combine_field_lines().
    std::string_view if_none_match;
    bool if_none_match_repeated = false;
    std::string_view if_modified_since;
    bool if_modified_since_repeated = false;
    std::string_view range;
    bool range_repeated = false;
    std::string_view if_range;
    bool if_range_repeated = false;
    std::string_view user_agent;
    std::string_view referer;
    // Accept-Encoding: `has_accept_encoding` even when empty (an empty field asks for
    // identity); repeated lines are one list, joined with combine_field_lines().
    std::string_view accept_encoding;
    bool has_accept_encoding = false;
    bool accept_encoding_repeated = false;

    // The whole head as received, leading empty lines and the final empty line included.
    std::string_view bytes;
};

// Replaces `out` with the values of every `lower_name` field line of `head` (a head that
// parse() accepted, as request_head::bytes gives it) joined by ", ", empty values left out:
// the one list that RFC 9110 section 5.3 makes of repeated field lines. It allocates, so
// it is for the rare repeat only.
void combine_field_lines(std::string_view head, std::string_view lower_name, std::string& out);

enum class parse_status : uint8_t { need_more, done, error };

class request_parser {
  public:
    // `max_head_bytes`: the largest head accepted, request line and final empty line included.
    explicit request_parser(uint32_t max_head_bytes) noexcept : max_(max_head_bytes) {}

    // Forgets the request, ready for the next one.
    void reset() noexcept;

    // `data` is every byte received since this request began: the same prefix as on the
    // previous call, possibly longer. Bytes past the head (a body, a pipelined request)
    // are left alone.
    parse_status parse(std::string_view data) noexcept;

    // After done: the head, and how many bytes of `data` it took.
    const request_head& head() const noexcept { return head_; }
    size_t head_length() const noexcept { return head_length_; }

    // After error: the status to answer with (400, 414, 431, 505).
    int error_status() const noexcept { return error_status_; }

    // The method as soon as its token has been read whole (up to its SP), also when the
    // request fails later (in the target, the version or a header); `other` before that.
    // An error answer to HEAD must carry no content (RFC 9110 section 9.3.2).
    method_t method() const noexcept { return head_.method; }

    // The request line once it has been read whole (done, or an error in the headers),
    // as a view into `data`; empty before that.
    std::string_view request_line(std::string_view data) const noexcept;

  private:
    struct span {
        uint32_t off = 0;
        uint32_t len = 0;
    };
    // A field meant to come once: the first line's value is kept, and a repeat is only
    // reported, for the handler to ignore or combine rather than guess at.
    struct once_field {
        span value;
        bool seen = false;
        void take(span v, bool& repeated) noexcept {
            if (seen) {
                repeated = true;
            } else {
                seen = true;
                value = v;
            }
        }
    };
    enum class state : uint8_t { leading_lines, request_line, headers, done, error };

    parse_status fail(int status) noexcept;
    bool parse_request_line(std::string_view line, size_t off) noexcept;
    bool parse_header(std::string_view line, size_t off) noexcept;
    bool finish(std::string_view data) noexcept;
    static std::string_view view(std::string_view data, span s) noexcept {
        return data.substr(s.off, s.len);
    }

    uint32_t max_;
    state state_ = state::leading_lines;
    size_t line_start_ = 0;  // where the line being read begins
    size_t scan_ = 0;        // bytes of this line already searched for its LF
    size_t head_length_ = 0;
    int error_status_ = 0;

    span method_, target_, request_line_, host_, user_agent_, referer_;
    once_field if_none_match_, if_modified_since_, range_, if_range_, accept_encoding_;
    request_head head_;
    unsigned te_codings_ = 0;
    unsigned te_chunked_ = 0;
    bool te_last_chunked_ = false;
    bool method_checked_ = false;  // the method's SP has been seen and its bytes checked
    size_t method_scan_ = 0;
};

// The request line as far as it came in `data` (the bytes of a head, even one that failed or
// did not arrive whole): leading empty lines skipped, up to its first CR or LF, at most `max`
// bytes. For the access log of an error answer: an attack leaves a trace.
std::string_view request_line_prefix(std::string_view data, size_t max = 2048) noexcept;

namespace detail {
// RFC 9110 section 5.6.2 tchar.
bool is_tchar(unsigned char c) noexcept;
// ASCII case-insensitive equality; `lower` must be lower case.
bool iequals(std::string_view s, std::string_view lower) noexcept;
}  // namespace detail

}  // namespace preforkd::http
