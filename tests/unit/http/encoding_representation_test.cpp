#include "http/encoding_representation.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "http/compress_cache.hpp"
#include "http/static_file.hpp"

using namespace preforkd;
using namespace preforkd::http;
namespace fs = std::filesystem;

namespace {

class representation_test : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() /
                ("preforkd-repr-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(base_);
        fs::create_directories(base_ / "www");
        fs::create_directories(base_ / "cache");
        write("page.html", std::string(5000, 'p'), 1000);
        write("page.html.br", "BR", 1001);
        write("page.html.gz", std::string(40'000, 'g'), 1000);  // same age: fine; large: fd
        write("old.html", std::string(3000, 'o'), 1000);
        write("old.html.br", "stale", 999);  // older than its file: ignored
        write("plain.bin", std::string(3000, 'b'), 1000);
        write("tiny.txt", "tiny", 1000);
        settings_.root_fd.reset(::open((base_ / "www").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        settings_.mime = mime_table::builtin();
    }
    void TearDown() override { fs::remove_all(base_); }
    void write(const std::string& rel, const std::string& s, time_t mtime) {
        std::ofstream(base_ / "www" / rel, std::ios::binary | std::ios::trunc) << s;
        timespec ts[2] = {{mtime, 0}, {mtime, 0}};
        ::utimensat(AT_FDCWD, (base_ / "www" / rel).c_str(), ts, 0);
    }
    void enable_compress() {
        settings_.encoding.compress = {coding::br, coding::gzip};
        settings_.compress_cache.dir_fd.reset(
            ::open((base_ / "cache").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    }

    fs::path base_;
    http_settings settings_;
};

}  // namespace

TEST_F(representation_test, sidecars_get_their_own_etag_the_original_type_and_vary) {
    file_cache c(settings_);
    const auto e = c.lookup("page.html", 1);
    ASSERT_EQ(e->kind, lookup_kind::file);
    EXPECT_EQ(e->variant_mask, coding_bit(coding::br) | coding_bit(coding::gzip));
    EXPECT_EQ(e->sidecar_mask, e->variant_mask);
    EXPECT_TRUE(e->vary);
    EXPECT_NE(e->type_lines.find("Vary: Accept-Encoding\r\nAccept-Ranges: bytes\r\n"),
              std::string::npos);
    EXPECT_NE(e->validator_lines.find("Vary: Accept-Encoding\r\n"), std::string::npos);

    const auto& br = e->variants[static_cast<size_t>(coding::br)];
    const auto& gz = e->variants[static_cast<size_t>(coding::gzip)];
    ASSERT_TRUE(br && gz);
    EXPECT_EQ(e->variants[static_cast<size_t>(coding::zstd)], nullptr);
    EXPECT_EQ(br->body, "BR");
    EXPECT_FALSE(gz->in_memory);  // a large sidecar keeps its fd for sendfile
    EXPECT_EQ(br->type_lines.rfind("Content-Type: text/html\r\nContent-Encoding: br\r\n", 0), 0u);
    EXPECT_EQ(gz->type_lines.rfind("Content-Type: text/html\r\nContent-Encoding: gzip\r\n", 0), 0u);
    EXPECT_NE(br->etag, e->etag);
    EXPECT_NE(gz->etag, e->etag);
    EXPECT_NE(br->etag, gz->etag);
    EXPECT_EQ(br->etag.substr(br->etag.size() - 4), "-br\"");
    EXPECT_EQ(br->length_line, "Content-Length: 2\r\n");
}

TEST_F(representation_test, a_stale_sidecar_and_a_file_without_sidecars_are_unchanged) {
    file_cache c(settings_);
    const auto e = c.lookup("old.html", 1);
    EXPECT_EQ(e->variant_mask, 0u);
    EXPECT_FALSE(e->vary);
    EXPECT_EQ(e->type_lines.find("Vary"), std::string::npos);
    const auto p = c.lookup("plain.bin", 1);
    EXPECT_FALSE(p->vary);
}

TEST_F(representation_test, precompressed_off_looks_for_nothing) {
    settings_.encoding.precompressed.clear();
    file_cache c(settings_);
    const auto e = c.lookup("page.html", 1);
    EXPECT_EQ(e->variant_mask, 0u);
    EXPECT_FALSE(e->vary);
}

TEST_F(representation_test, a_sidecar_added_or_removed_is_seen_at_the_next_check) {
    file_cache c(settings_);
    auto e = c.lookup("old.html", 1);
    EXPECT_EQ(e->variant_mask, 0u);
    write("old.html.zst", "ZS", 1002);
    e = c.lookup("old.html", 1);  // the same second: not checked again
    EXPECT_EQ(e->variant_mask, 0u);
    e = c.lookup("old.html", 2);
    EXPECT_EQ(e->variant_mask, coding_bit(coding::zstd));
    fs::remove(base_ / "www" / "old.html.zst");
    e = c.lookup("old.html", 3);
    EXPECT_EQ(e->variant_mask, 0u);
    write("page.html.br", "BR2", 1003);  // changed in place
    e = c.lookup("page.html", 4);
    EXPECT_EQ(e->variants[static_cast<size_t>(coding::br)]->body, "BR2");
}

TEST_F(representation_test, compression_applies_to_text_types_of_a_fitting_size) {
    enable_compress();
    file_cache c(settings_);
    const auto page = c.lookup("page.html", 1);
    // br and gzip are sidecars: compression adds nothing.
    EXPECT_EQ(page->compress_mask, 0u);
    const auto old = c.lookup("old.html", 1);
    EXPECT_EQ(old->compress_mask, coding_bit(coding::br) | coding_bit(coding::gzip));
    EXPECT_TRUE(old->vary);
    EXPECT_EQ(c.lookup("tiny.txt", 1)->compress_mask, 0u);   // under 1 KiB
    EXPECT_EQ(c.lookup("plain.bin", 1)->compress_mask, 0u);  // not text
    settings_.compress_cache.max_file_size = 2000;
    file_cache small(settings_);
    EXPECT_EQ(small.lookup("old.html", 1)->compress_mask, 0u);  // over the cap
}

TEST_F(representation_test, a_copy_in_the_cache_is_found_and_labelled_from_the_original) {
    enable_compress();
    file_cache c(settings_);
    auto e = c.lookup("old.html", 1);
    ASSERT_EQ(e->variant_mask, 0u);
    const std::string name = cache_file_name(c.source(0).root_id, "old.html", e->etag, coding::br);
    std::ofstream(base_ / "cache" / name, std::ios::binary) << "COMPRESSED";
    ASSERT_TRUE(attach_cached_copy(*e, coding::br, c.source(0)));
    const auto& v = e->variants[static_cast<size_t>(coding::br)];
    ASSERT_TRUE(v);
    EXPECT_EQ(v->body, "COMPRESSED");
    EXPECT_EQ(v->etag, e->etag.substr(0, e->etag.size() - 1) + "-br\"");
    EXPECT_EQ(v->last_modified, e->last_modified);
    EXPECT_FALSE(attach_cached_copy(*e, coding::gzip, c.source(0)));
    // A new cache (another worker) finds it when it resolves the file.
    file_cache other(settings_);
    EXPECT_EQ(other.lookup("old.html", 1)->variant_mask, coding_bit(coding::br));
}

TEST(encoding_settings, sizes_take_binary_units) {
    uint64_t v = 0;
    EXPECT_TRUE(parse_byte_size("256MiB", v));
    EXPECT_EQ(v, uint64_t{256} << 20);
    EXPECT_TRUE(parse_byte_size("64KiB", v));
    EXPECT_EQ(v, 65536u);
    EXPECT_TRUE(parse_byte_size("1G", v));
    EXPECT_EQ(v, uint64_t{1} << 30);
    EXPECT_TRUE(parse_byte_size("4096", v));
    EXPECT_EQ(v, 4096u);
    for (const char* bad : {"", "MiB", "12 parsecs", "-1", "1.5MiB", "99999999999999999999"})
        EXPECT_FALSE(parse_byte_size(bad, v)) << bad;
}

TEST(encoding_settings, text_types_are_compressible) {
    for (const char* t :
         {"text/html", "text/css", "text/plain; charset=utf-8", "text/javascript",
          "application/javascript", "application/json", "image/svg+xml", "application/xml"})
        EXPECT_TRUE(compressible_type(t)) << t;
    for (const char* t : {"image/png", "application/octet-stream", "application/gzip", "video/mp4"})
        EXPECT_FALSE(compressible_type(t)) << t;
}

TEST(encoding_settings, the_defaults_look_for_every_sidecar_and_compress_nothing) {
    encoding_settings s;
    EXPECT_EQ(s.precompressed, (std::vector<coding>{coding::br, coding::zstd, coding::gzip}));
    EXPECT_TRUE(s.compress.empty());
    compress_cache_settings c;
    EXPECT_EQ(c.path, "/var/cache/preforkd");
    EXPECT_FALSE(c.dir_fd.valid());
}
