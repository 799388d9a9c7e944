// The prebuilt 200 head of a cached file: built once, its Date kept current.
#include <gtest/gtest.h>

#include <string>

#include "http/response.hpp"
#include "http/static_file.hpp"

using namespace preforkd::http;

namespace {

file_entry sample_entry() {
    file_entry e;
    e.kind = lookup_kind::file;
    e.length_line = "Content-Length: 3\r\n";
    e.type_lines = "Content-Type: text/plain\r\nETag: \"1\"\r\n";
    return e;
}

}  // namespace

TEST(ok_head, is_the_status_line_server_date_and_the_entry_lines) {
    date_cache dates("preforkd/test");
    dates.update(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
    file_entry e = sample_entry();
    EXPECT_EQ(ok_head(e, dates),
              "HTTP/1.1 200 OK\r\nServer: preforkd/test\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
              "Content-Length: 3\r\nContent-Type: text/plain\r\nETag: \"1\"\r\n");
}

TEST(ok_head, follows_the_date_cache_second_by_second_in_place) {
    date_cache dates("preforkd/test");
    dates.update(784111777);
    file_entry e = sample_entry();
    const std::string first(ok_head(e, dates));
    const char* storage = e.ok_head.data();

    dates.update(784111778);
    const std::string second(ok_head(e, dates));
    EXPECT_NE(second.find("Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n"), std::string::npos) << second;
    EXPECT_EQ(second.size(), first.size());
    EXPECT_EQ(e.ok_head.data(), storage) << "rewritten in place, not rebuilt";

    // A date cache that went back (another worker's clock is not ours, but a test's is).
    dates.update(784111777);
    EXPECT_EQ(ok_head(e, dates), first);
}
