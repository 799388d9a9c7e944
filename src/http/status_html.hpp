// The status page for people: when a browser asks (its Accept prefers text/html) or with
// ?html, /server-status answers one self-contained HTML page instead of the machine text:
// the scoreboard as a grid of coloured cells (one per live worker, like Apache's "_W." line),
// live workers per generation, and requests/s and bytes/s over the last minute, computed by a
// few lines of inline script that poll ?json each second. No external asset, no framework.
#pragma once

#include <string>
#include <string_view>

#include "http/status_page.hpp"

namespace preforkd::http {

enum class status_format { text, json, html };

// The answer's format: ?json, ?auto (Apache's machine text) and ?html win; otherwise HTML when
// the Accept field prefers text/html over text/plain (browsers), text for everyone else (curl
// sends */*, scripts send nothing).
status_format choose_status_format(std::string_view query, std::string_view accept);

// The q-value (0..1000, in thousandths, as RFC 9110 section 12.4.2 allows three decimals) that
// `accept` gives `media_type` ("text/html"), from its most specific matching range
// (text/html over text/* over */*); -1 when no range matches. An empty field accepts anything.
int accept_quality(std::string_view accept, std::string_view media_type);

// Whether text/html is acceptable and ranked strictly above text/plain.
bool prefers_html(std::string_view accept);

// The page polls `status_path`?json; it is HTML-escaped into an attribute, never into script.
void render_status_html(const status_snapshot& s, std::string_view version,
                        std::string_view status_path, std::string& out);

// The Content-Security-Policy the page is answered with: nothing may load or run but its own
// <style> and <script> texts, allowed by their SHA-256 (no 'unsafe-inline', no nonce to
// generate per answer), and fetches to its own origin (?json). status_html_test recomputes
// both hashes from the texts, so the two cannot drift apart.
inline constexpr std::string_view status_html_csp =
    "default-src 'none'; style-src 'sha256-w4lEdAOi6FxigzpXvycdqs5/PtzhttjeVWldsMOg1lk='; "
    "script-src 'sha256-1yhNdkTnwWbnmB6hjyK66XVW0SrAwxJQE3KhmW93Dek='; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The page's style and script texts, exactly as between their tags (for the hashes).
std::string_view status_html_style() noexcept;
std::string_view status_html_script() noexcept;

}  // namespace preforkd::http
