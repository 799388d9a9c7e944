#include "http/mime.hpp"

#include <gtest/gtest.h>

using namespace preforkd::http;

TEST(mime_table, parses_the_mime_types_format) {
    mime_table t = mime_table::parse(
        "# comment line\n"
        "text/html\t\t\t\thtml htm shtml\n"
        "image/png png # trailing comment\n"
        "application/x-empty\n"
        "\n"
        "   text/css   css\r\n");
    EXPECT_EQ(t.lookup("index.html"), "text/html");
    EXPECT_EQ(t.lookup("a/b/page.htm"), "text/html");
    EXPECT_EQ(t.lookup("logo.png"), "image/png");
    EXPECT_EQ(t.lookup("style.css"), "text/css");
    EXPECT_EQ(t.size(), 5u);
}

TEST(mime_table, looks_extensions_up_case_insensitively) {
    mime_table t = mime_table::parse("image/jpeg jpg JPEG\n");
    EXPECT_EQ(t.lookup("PHOTO.JPG"), "image/jpeg");
    EXPECT_EQ(t.lookup("photo.jpeg"), "image/jpeg");
}

TEST(mime_table, keeps_the_first_type_named_for_an_extension) {
    mime_table t = mime_table::parse("text/javascript js\napplication/javascript js\n");
    EXPECT_EQ(t.lookup("app.js"), "text/javascript");
}

TEST(mime_table, defaults_to_octet_stream) {
    mime_table t = mime_table::parse("text/html html\n");
    EXPECT_EQ(t.lookup("archive.unknown"), "application/octet-stream");
    EXPECT_EQ(t.lookup("README"), "application/octet-stream");
    EXPECT_EQ(t.lookup("dir.d/README"), "application/octet-stream");
    EXPECT_EQ(t.lookup("trailing."), "application/octet-stream");
}

TEST(mime_table, builtin_table_covers_a_web_site) {
    mime_table t = mime_table::builtin();
    EXPECT_EQ(t.lookup("a.html"), "text/html");
    EXPECT_EQ(t.lookup("a.css"), "text/css");
    EXPECT_EQ(t.lookup("a.js"), "text/javascript");
    EXPECT_EQ(t.lookup("a.svg"), "image/svg+xml");
    EXPECT_EQ(t.lookup("a.woff2"), "font/woff2");
    EXPECT_EQ(t.lookup("a.wasm"), "application/wasm");
}

TEST(mime_table, falls_back_to_the_builtin_table_without_a_file) {
    mime_table t = mime_table::load("/nonexistent/mime.types");
    EXPECT_EQ(t.lookup("a.png"), "image/png");
}

// Issue 16 item 7: http.charset on text types only, once at load.
TEST(mime_table, appends_the_charset_to_text_types_only) {
    mime_table t = mime_table::parse(
        "text/html html\ntext/css css\napplication/javascript js\napplication/json json\n"
        "image/svg+xml svg\napplication/xml xml\napplication/atom+xml atom\n"
        "image/png png\napplication/pdf pdf\ntext/plain;charset=latin1 lat\n");
    t.set_charset("utf-8");
    EXPECT_EQ(t.lookup("a.html"), "text/html; charset=utf-8");
    EXPECT_EQ(t.lookup("a.css"), "text/css; charset=utf-8");
    EXPECT_EQ(t.lookup("a.js"), "application/javascript; charset=utf-8");
    EXPECT_EQ(t.lookup("a.json"), "application/json; charset=utf-8");
    EXPECT_EQ(t.lookup("a.svg"), "image/svg+xml; charset=utf-8");
    EXPECT_EQ(t.lookup("a.xml"), "application/xml; charset=utf-8");
    EXPECT_EQ(t.lookup("a.atom"), "application/atom+xml; charset=utf-8");
    EXPECT_EQ(t.lookup("a.png"), "image/png");
    EXPECT_EQ(t.lookup("a.pdf"), "application/pdf");
    EXPECT_EQ(t.lookup("a.lat"), "text/plain;charset=latin1");  // a parameter already there
    EXPECT_EQ(t.lookup("a.unknown"), "application/octet-stream");
}

TEST(mime_table, an_empty_charset_changes_nothing) {
    mime_table t = mime_table::builtin();
    t.set_charset("");
    EXPECT_EQ(t.lookup("a.html"), "text/html");
    EXPECT_EQ(t.lookup("a.js"), "text/javascript");
}

TEST(mime_table, knows_which_types_are_text) {
    EXPECT_TRUE(mime_table::is_text_type("text/plain"));
    EXPECT_TRUE(mime_table::is_text_type("application/javascript"));
    EXPECT_TRUE(mime_table::is_text_type("application/ld+json"));
    EXPECT_FALSE(mime_table::is_text_type("application/octet-stream"));
    EXPECT_FALSE(mime_table::is_text_type("image/png"));
    EXPECT_FALSE(mime_table::is_text_type("texts/plain"));
}
