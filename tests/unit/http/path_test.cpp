#include "http/path.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace preforkd::http;
namespace fs = std::filesystem;

namespace {

std::string norm(std::string_view raw, bool hidden = false) {
    std::string out;
    path_result r = normalize_path(raw, hidden, out);
    if (r == path_result::bad_request) return "<400>";
    if (r == path_result::hidden) return "<hidden>";
    return out;
}

}  // namespace

TEST(normalize_path, maps_the_root_to_an_empty_path) { EXPECT_EQ(norm("/"), ""); }

TEST(normalize_path, keeps_plain_paths_and_marks_folders_with_a_slash) {
    EXPECT_EQ(norm("/a/b.html"), "a/b.html");
    EXPECT_EQ(norm("/a/b/"), "a/b/");
}

TEST(normalize_path, collapses_empty_and_dot_segments) {
    EXPECT_EQ(norm("/a//b"), "a/b");
    EXPECT_EQ(norm("/a/./b"), "a/b");
    EXPECT_EQ(norm("/a/."), "a/");
    EXPECT_EQ(norm("//a"), "a");
}

TEST(normalize_path, resolves_dot_dot_inside_the_root) {
    EXPECT_EQ(norm("/a/../b"), "b");
    EXPECT_EQ(norm("/a/b/.."), "a/");
    EXPECT_EQ(norm("/a/.."), "");
}

TEST(normalize_path, refuses_dot_dot_above_the_root) {
    EXPECT_EQ(norm("/../"), "<400>");
    EXPECT_EQ(norm("/.."), "<400>");
    EXPECT_EQ(norm("/a/../../etc/passwd"), "<400>");
}

TEST(normalize_path, decodes_before_removing_dot_segments) {
    EXPECT_EQ(norm("/%2e%2e/"), "<400>");
    EXPECT_EQ(norm("/%2E%2E/etc/passwd"), "<400>");
    EXPECT_EQ(norm("/a/%2e%2e/b"), "b");
    EXPECT_EQ(norm("/a/.%2e/.%2E/x"), "<400>");
}

TEST(normalize_path, refuses_an_encoded_slash) {
    EXPECT_EQ(norm("/..%2f"), "<400>");
    EXPECT_EQ(norm("/a%2Fb"), "<400>");
    EXPECT_EQ(norm("/..%2F..%2Fetc%2Fpasswd"), "<400>");
}

TEST(normalize_path, refuses_an_encoded_nul) { EXPECT_EQ(norm("/index.html%00.txt"), "<400>"); }

TEST(normalize_path, refuses_malformed_escapes) {
    EXPECT_EQ(norm("/%zz"), "<400>");
    EXPECT_EQ(norm("/%4"), "<400>");
    EXPECT_EQ(norm("/a%"), "<400>");
}

TEST(normalize_path, decodes_exactly_once) {
    EXPECT_EQ(norm("/%2541"), "%41");
    EXPECT_EQ(norm("/%252e%252e/"), "%2e%2e/");
    EXPECT_EQ(norm("/hello%20world"), "hello world");
}

TEST(normalize_path, hides_dotfiles_unless_asked) {
    EXPECT_EQ(norm("/.git/config"), "<hidden>");
    EXPECT_EQ(norm("/a/.env"), "<hidden>");
    EXPECT_EQ(norm("/a/%2eenv"), "<hidden>");
    EXPECT_EQ(norm("/.well-known/x"), "<hidden>");
    EXPECT_EQ(norm("/.git/config", true), ".git/config");
}

TEST(normalize_path, needs_a_leading_slash) { EXPECT_EQ(norm("a/b"), "<400>"); }

TEST(split_target, separates_path_and_query) {
    target_parts p = split_target("/a/b?x=1&y", target_form::origin);
    EXPECT_EQ(p.path, "/a/b");
    EXPECT_EQ(p.query, "x=1&y");
}

TEST(split_target, drops_scheme_and_authority_of_the_absolute_form) {
    target_parts p = split_target("http://example.com:80/a?q", target_form::absolute);
    EXPECT_EQ(p.path, "/a");
    EXPECT_EQ(p.query, "q");
    EXPECT_EQ(split_target("http://example.com", target_form::absolute).path, "/");
    EXPECT_EQ(split_target("http://example.com?q", target_form::absolute).path, "/");
}

TEST(split_target, absolute_form_with_dot_dot_is_still_refused) {
    target_parts p = split_target("http://example.com/../etc/passwd", target_form::absolute);
    EXPECT_EQ(norm(p.path), "<400>");
}

class open_beneath_test : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() /
                ("preforkd-path-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(base_);
        fs::create_directories(base_ / "root" / "sub");
        std::ofstream(base_ / "secret.txt") << "secret";
        std::ofstream(base_ / "root" / "sub" / "file.txt") << "inside";
        fs::create_symlink(base_ / "secret.txt", base_ / "root" / "escape");
        fs::create_symlink("../secret.txt", base_ / "root" / "relative_escape");
        fs::create_directory_symlink(base_, base_ / "root" / "dir_escape");
        fs::create_symlink("sub/file.txt", base_ / "root" / "inner_link");
        root_ = ::open((base_ / "root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        ASSERT_GE(root_, 0);
    }
    void TearDown() override {
        ::close(root_);
        fs::remove_all(base_);
    }
    std::string read_all(int fd) {
        char buf[64];
        ssize_t n = ::read(fd, buf, sizeof buf);
        ::close(fd);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }

    fs::path base_;
    int root_ = -1;
};

TEST_F(open_beneath_test, opens_a_file_under_the_root) {
    bool use = true;
    int fd = open_beneath(root_, "sub/file.txt", O_RDONLY, use);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(read_all(fd), "inside");
}

TEST_F(open_beneath_test, refuses_a_symlink_out_of_the_root) {
    for (const char* p : {"escape", "relative_escape", "dir_escape/secret.txt"}) {
        bool use = true;
        int fd = open_beneath(root_, p, O_RDONLY, use);
        EXPECT_LT(fd, 0) << p;
        if (fd >= 0) ::close(fd);
    }
}

TEST_F(open_beneath_test, refuses_dot_dot_even_if_handed_one) {
    bool use = true;
    int fd = open_beneath(root_, "../secret.txt", O_RDONLY, use);
    EXPECT_LT(fd, 0);
    if (fd >= 0) ::close(fd);
    fd = detail::open_beneath_walk(root_, "../secret.txt", O_RDONLY);
    EXPECT_LT(fd, 0);
    if (fd >= 0) ::close(fd);
}

TEST_F(open_beneath_test, follows_a_symlink_that_stays_inside_with_openat2) {
    bool use = true;
    int fd = open_beneath(root_, "inner_link", O_RDONLY, use);
    if (!use) GTEST_SKIP() << "no openat2 here";
    ASSERT_GE(fd, 0);
    EXPECT_EQ(read_all(fd), "inside");
}

TEST_F(open_beneath_test, the_fallback_walk_refuses_every_symlink) {
    for (const char* p : {"escape", "relative_escape", "dir_escape/secret.txt", "inner_link"}) {
        int fd = detail::open_beneath_walk(root_, p, O_RDONLY);
        EXPECT_LT(fd, 0) << p;
        if (fd >= 0) ::close(fd);
    }
    int fd = detail::open_beneath_walk(root_, "sub/file.txt", O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(read_all(fd), "inside");
}
