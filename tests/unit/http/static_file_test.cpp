#include "http/static_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace preforkd;
using namespace preforkd::http;
namespace fs = std::filesystem;

class file_cache_test : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() /
                ("preforkd-cache-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(base_);
        fs::create_directories(base_ / "dir");
        fs::create_directories(base_ / "bare");
        write("small.css", "body{}");
        write("large.bin", std::string(file_cache::memory_limit + 1, 'x'));
        write("dir/index.htm", "htm");
        write("dir/index.html", "html");
        settings_.root_fd.reset(::open(base_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        settings_.mime = mime_table::builtin();
        settings_.index = {"index.html", "index.htm"};
    }
    void TearDown() override { fs::remove_all(base_); }
    void write(const std::string& rel, const std::string& s) {
        std::ofstream(base_ / rel, std::ios::binary | std::ios::trunc) << s;
    }

    fs::path base_;
    http_settings settings_;
};

TEST_F(file_cache_test, keeps_small_files_in_memory_with_prebuilt_headers) {
    file_cache c(settings_);
    const auto& e = c.lookup("small.css", 1);
    ASSERT_EQ(e->kind, lookup_kind::file);
    EXPECT_TRUE(e->in_memory);
    EXPECT_FALSE(e->fd.valid());
    EXPECT_EQ(e->body, "body{}");
    EXPECT_EQ(e->length_line, "Content-Length: 6\r\n");
    EXPECT_EQ(e->type_lines.rfind("Content-Type: text/css\r\nLast-Modified: ", 0), 0u);
    EXPECT_NE(e->type_lines.find("ETag: " + e->etag + "\r\nAccept-Ranges: bytes\r\n"),
              std::string::npos);
}

TEST_F(file_cache_test, keeps_an_fd_for_large_files) {
    file_cache c(settings_);
    const auto& e = c.lookup("large.bin", 1);
    ASSERT_EQ(e->kind, lookup_kind::file);
    EXPECT_FALSE(e->in_memory);
    EXPECT_TRUE(e->fd.valid());
    EXPECT_EQ(e->size, file_cache::memory_limit + 1);
}

TEST_F(file_cache_test, returns_the_same_entry_within_a_second) {
    file_cache c(settings_);
    const file_entry* first = c.lookup("small.css", 1).get();
    write("small.css", "changed!");
    EXPECT_EQ(c.lookup("small.css", 1).get(), first);
    EXPECT_EQ(c.lookup("small.css", 1)->body, "body{}");
}

TEST_F(file_cache_test, reloads_a_changed_file_the_next_second) {
    file_cache c(settings_);
    EXPECT_EQ(c.lookup("small.css", 1)->body, "body{}");
    write("small.css", "changed!");
    EXPECT_EQ(c.lookup("small.css", 2)->body, "changed!");
}

TEST_F(file_cache_test, keeps_an_unchanged_file_after_revalidating) {
    file_cache c(settings_);
    const file_entry* first = c.lookup("small.css", 1).get();
    EXPECT_EQ(c.lookup("small.css", 2).get(), first);
}

TEST_F(file_cache_test, forgets_a_deleted_file_the_next_second) {
    file_cache c(settings_);
    ASSERT_EQ(c.lookup("small.css", 1)->kind, lookup_kind::file);
    fs::remove(base_ / "small.css");
    EXPECT_EQ(c.lookup("small.css", 2)->kind, lookup_kind::not_found);
}

TEST_F(file_cache_test, tries_index_files_in_order) {
    file_cache c(settings_);
    const auto& e = c.lookup("dir/", 1);
    ASSERT_EQ(e->kind, lookup_kind::file);
    EXPECT_EQ(e->open_path, "dir/index.html");
    EXPECT_EQ(e->body, "html");
    fs::remove(base_ / "dir" / "index.html");
    const auto& again = c.lookup("dir/", 2);
    ASSERT_EQ(again->kind, lookup_kind::file);
    EXPECT_EQ(again->body, "htm");
}

TEST_F(file_cache_test, tells_folders_files_and_missing_paths_apart) {
    file_cache c(settings_);
    EXPECT_EQ(c.lookup("dir", 1)->kind, lookup_kind::redirect);
    EXPECT_EQ(c.lookup("bare/", 1)->kind, lookup_kind::forbidden);
    EXPECT_EQ(c.lookup("nothing", 1)->kind, lookup_kind::not_found);
    EXPECT_EQ(c.lookup("small.css/", 1)->kind, lookup_kind::not_found);
    EXPECT_EQ(c.lookup("small.css/x", 1)->kind, lookup_kind::not_found);
}

TEST_F(file_cache_test, never_opens_a_fifo) {
    ASSERT_EQ(::mkfifo((base_ / "pipe").c_str(), 0600), 0);
    file_cache c(settings_);
    // Without O_NONBLOCK this open would wait for a writer forever.
    EXPECT_EQ(c.lookup("pipe", 1)->kind, lookup_kind::not_found);
}

TEST_F(file_cache_test, refuses_a_symlink_out_of_the_root) {
    std::ofstream(base_.string() + "-outside") << "secret";
    fs::create_symlink(base_.string() + "-outside", base_ / "link");
    file_cache c(settings_);
    EXPECT_EQ(c.lookup("link", 1)->kind, lookup_kind::not_found);
    fs::remove(base_.string() + "-outside");
}

TEST_F(file_cache_test, answers_forbidden_for_an_unreadable_file) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads everything";
    write("locked.txt", "x");
    fs::permissions(base_ / "locked.txt", fs::perms::none);
    file_cache c(settings_);
    EXPECT_EQ(c.lookup("locked.txt", 1)->kind, lookup_kind::forbidden);
}
