// Issue 16 item 6: the access log's three formats and the JSON escaping.
#include "http/access_log.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace preforkd::http;
using preforkd::access_log_format;

namespace {

access_record sample() {
    access_record r;
    r.client = "192.0.2.7";
    r.time = "07/Dec/2026:02:10:00 +0000";
    r.request_line = "GET /docs/a.html?x=1&y=2 HTTP/1.1";
    r.status = 200;
    r.body_bytes = 1024;
    r.referer = "http://example.org/";
    r.user_agent = "curl/8.0";
    r.host = "Example.ORG:8443";
    r.listener = "127.0.0.1:8443";
    r.port = 8443;
    r.unix_ms = 1796609400123;  // 2026-12-07T02:10:00.123Z
    r.duration_us = 250;
    r.tls = "TLSv1.3";
    return r;
}

std::string line(access_log_format f, const access_record& r) {
    std::string out;
    format_access_line(f, r, out);
    return out;
}

std::string json(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

}  // namespace

TEST(access_log, combined_is_the_default_format) {
    const std::string want =
        "192.0.2.7 - - [07/Dec/2026:02:10:00 +0000] \"GET /docs/a.html?x=1&y=2 HTTP/1.1\" 200 "
        "1024 \"http://example.org/\" \"curl/8.0\"\n";
    EXPECT_EQ(line(access_log_format::combined, sample()), want);
    std::string out;
    format_access_line(sample(), out);
    EXPECT_EQ(out, want);
}

TEST(access_log, combined_gains_the_host_when_sites_are_configured) {
    using f = access_log_format;
    static_assert(effective_access_format(f::combined, false) == f::combined);
    EXPECT_EQ(effective_access_format(f::combined, true), f::vhost_combined);
    EXPECT_EQ(effective_access_format(f::vhost_combined, false), f::vhost_combined);
    EXPECT_EQ(effective_access_format(f::json, true), f::json);  // json names the host anyway
}

TEST(access_log, vhost_combined_puts_the_host_name_and_the_listener_port_first) {
    EXPECT_EQ(line(access_log_format::vhost_combined, sample()),
              "example.org:8443 192.0.2.7 - - [07/Dec/2026:02:10:00 +0000] \"GET "
              "/docs/a.html?x=1&y=2 HTTP/1.1\" 200 1024 \"http://example.org/\" \"curl/8.0\"\n");
    access_record v6 = sample();
    v6.host = "[::1]:8443";
    EXPECT_EQ(line(access_log_format::vhost_combined, v6).rfind("[::1]:8443 192.0.2.7 ", 0), 0u);
    access_record bare = sample();
    bare.host = "www.example.org";
    bare.port = 80;
    EXPECT_EQ(line(access_log_format::vhost_combined, bare).rfind("www.example.org:80 ", 0), 0u);
}

TEST(access_log, vhost_combined_names_the_listener_without_a_host) {
    access_record r = sample();
    r.host = "";
    EXPECT_EQ(line(access_log_format::vhost_combined, r).rfind("127.0.0.1:8443 192.0.2.7 ", 0), 0u);
    r.listener = "";
    EXPECT_EQ(line(access_log_format::vhost_combined, r).rfind("- 192.0.2.7 ", 0), 0u);
}

TEST(access_log, vhost_combined_escapes_a_forged_host) {
    access_record r = sample();
    r.host = "evil\" 1.2.3.4\n";
    const std::string l = line(access_log_format::vhost_combined, r);
    EXPECT_EQ(l.rfind("evil\\x22\\x201.2.3.4\\x0a:8443 192.0.2.7 ", 0), 0u) << l;
    EXPECT_EQ(l.find('\n'), l.size() - 1);
}

TEST(access_log, json_writes_one_object_with_every_field) {
    EXPECT_EQ(line(access_log_format::json, sample()),
              "{\"time\":\"2026-12-07T02:10:00.123Z\",\"client\":\"192.0.2.7\","
              "\"host\":\"Example.ORG:8443\",\"method\":\"GET\",\"path\":\"/docs/a.html\","
              "\"query\":\"x=1&y=2\",\"status\":200,\"bytes\":1024,"
              "\"referer\":\"http://example.org/\",\"user_agent\":\"curl/8.0\","
              "\"duration_us\":250,\"tls\":\"TLSv1.3\"}\n");
}

TEST(access_log, json_has_null_tls_on_plain_connections_and_empty_strings_for_absent_parts) {
    access_record r = sample();
    r.tls = nullptr;
    r.request_line = "";
    r.referer = "";
    r.user_agent = "";
    r.host = "";
    r.status = 408;
    r.body_bytes = 0;
    EXPECT_EQ(line(access_log_format::json, r),
              "{\"time\":\"2026-12-07T02:10:00.123Z\",\"client\":\"192.0.2.7\",\"host\":\"\","
              "\"method\":\"\",\"path\":\"\",\"query\":\"\",\"status\":408,\"bytes\":0,"
              "\"referer\":\"\",\"user_agent\":\"\",\"duration_us\":250,\"tls\":null}\n");
}

TEST(access_log, json_splits_partial_request_lines) {
    access_record r = sample();
    r.request_line = "GET /only-a-target";
    std::string l = line(access_log_format::json, r);
    EXPECT_NE(l.find("\"method\":\"GET\",\"path\":\"/only-a-target\",\"query\":\"\""),
              std::string::npos)
        << l;
    r.request_line = "BREW";
    l = line(access_log_format::json, r);
    EXPECT_NE(l.find("\"method\":\"BREW\",\"path\":\"\",\"query\":\"\""), std::string::npos) << l;
    r.request_line = "GET /a?b?c HTTP/1.0";
    l = line(access_log_format::json, r);
    EXPECT_NE(l.find("\"path\":\"/a\",\"query\":\"b?c\""), std::string::npos) << l;
}

TEST(access_log, json_escapes_quotes_backslashes_and_controls) {
    EXPECT_EQ(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(json("\n\r\t"), "\"\\n\\r\\t\"");
    EXPECT_EQ(json(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
    EXPECT_EQ(json(""), "\"\"");
    EXPECT_EQ(json("/plain?x=1"), "\"/plain?x=1\"");
}

TEST(access_log, json_keeps_valid_utf8_and_replaces_invalid_bytes) {
    EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    EXPECT_EQ(json("\xff"), "\"\\ufffd\"");
    EXPECT_EQ(json("a\x80z"), "\"a\\ufffdz\"");                    // a lone continuation byte
    EXPECT_EQ(json("\xc3"), "\"\\ufffd\"");                        // cut short at the end
    EXPECT_EQ(json("\xc3(x"), "\"\\ufffd(x\"");                    // cut short in the middle
    EXPECT_EQ(json("\xc0\xaf"), "\"\\ufffd\\ufffd\"");             // overlong '/'
    EXPECT_EQ(json("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"");  // overlong, 3 bytes
    EXPECT_EQ(json("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a UTF-16 surrogate
    EXPECT_EQ(json("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
    EXPECT_EQ(json("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");              // U+10FFFF
}

TEST(access_log, json_fields_from_the_client_are_escaped) {
    access_record r = sample();
    r.user_agent = "x\"}\n{\"status\":500";
    r.request_line = "GET /a\xff\"b HTTP/1.1";
    const std::string l = line(access_log_format::json, r);
    EXPECT_EQ(l.find('\n'), l.size() - 1) << l;
    EXPECT_NE(l.find("\"user_agent\":\"x\\\"}\\n{\\\"status\\\":500\""), std::string::npos) << l;
    EXPECT_NE(l.find("\"path\":\"/a\\ufffd\\\"b\""), std::string::npos) << l;
}

TEST(access_log, json_cuts_the_request_line_like_the_other_formats) {
    access_record r = sample();
    const std::string target = "/" + std::string(5000, 'x');
    const std::string request = "GET " + target + " HTTP/1.1";
    r.request_line = request;
    const std::string l = line(access_log_format::json, r);
    EXPECT_LT(l.size(), max_logged_request_line + 400);
}
