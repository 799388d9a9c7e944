#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <preforkd/log.hpp>
#include <regex>
#include <sstream>

namespace preforkd {
namespace {

std::string slurp(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct log_file : ::testing::Test {
    std::string path = std::filesystem::temp_directory_path() /
                       ("preforkd-log-test-" + std::to_string(::getpid()) + ".log");
    ~log_file() override { std::filesystem::remove(path); }
};

TEST_F(log_file, line_has_utc_millisecond_timestamp_level_role_and_pid) {
    logger log("supervisor", log_level::info);
    ASSERT_TRUE(log.open(path));
    log.info("spawned worker {} (generation {}, slot {})", 1240, 2, 3);
    std::string line = slurp(path);
    std::regex want(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z \[info\] supervisor\[(\d+)\]: )"
                    R"(spawned worker 1240 \(generation 2, slot 3\)\n$)");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, want)) << line;
    EXPECT_EQ(std::stoi(m[1]), ::getpid());
}

TEST_F(log_file, lines_below_the_level_are_dropped) {
    logger log("worker", log_level::warn);
    ASSERT_TRUE(log.open(path));
    log.info("not this");
    log.debug("nor this");
    log.warn("this");
    log.crit("and this");
    std::string text = slurp(path);
    EXPECT_EQ(text.find("not this"), std::string::npos);
    EXPECT_EQ(text.find("nor this"), std::string::npos);
    EXPECT_NE(text.find("[warn] worker["), std::string::npos);
    EXPECT_NE(text.find("[crit] worker["), std::string::npos);
}

TEST_F(log_file, a_newline_in_a_message_cannot_forge_a_second_line) {
    logger log("worker", log_level::debug);
    ASSERT_TRUE(log.open(path));
    log.error("bad request line: {}", "GET /\n2026-01-01T00:00:00.000Z [crit] forged");
    std::string text = slurp(path);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST_F(log_file, reopen_follows_a_renamed_file) {
    logger log("supervisor", log_level::info);
    ASSERT_TRUE(log.open(path));
    log.info("before");
    std::string rotated = path + ".1";
    std::filesystem::rename(path, rotated);
    ASSERT_TRUE(log.open(log.target()));
    log.info("after");
    EXPECT_NE(slurp(rotated).find("before"), std::string::npos);
    EXPECT_NE(slurp(path).find("after"), std::string::npos);
    EXPECT_EQ(slurp(path).find("before"), std::string::npos);
    std::filesystem::remove(rotated);
}

TEST(log_open, unwritable_path_is_an_error_naming_it) {
    logger log("supervisor", log_level::info);
    auto r = log.open("/nonexistent-dir/x.log");
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().message.find("/nonexistent-dir/x.log"), std::string::npos);
    EXPECT_EQ(log.target(), "stderr");  // the old target stays
}

}  // namespace
}  // namespace preforkd
