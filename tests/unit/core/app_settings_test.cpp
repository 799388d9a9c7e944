// config::app_settings<T>() checks the type it hands out (issue 13 item 8): the settings a
// settings_table<T> made answer to T only; without a schema there is nothing to hand out.
#include <gtest/gtest.h>

#include <preforkd/config.hpp>
#include <stdexcept>
#include <string>

namespace preforkd {
namespace {

struct greeting_settings {
    std::string word = "hello";
};
struct other_settings {
    int n = 0;
};

TEST(app_settings, hands_out_its_own_type_and_refuses_another) {
    auto schema = settings_table<greeting_settings>(
        "greeting",
        [](table_reader& t, greeting_settings& s) { s.word = t.string("word", s.word); });
    auto cfg = parse_config("[greeting]\nword = \"hi\"\n", "test.toml", schema);
    ASSERT_TRUE(cfg) << cfg.err().message;
    EXPECT_EQ(cfg->app_settings<greeting_settings>().word, "hi");
    EXPECT_THROW((void)cfg->app_settings<other_settings>(), std::logic_error);
    const config copy = *cfg;  // copies share the settings, and their type
    EXPECT_EQ(copy.app_settings<greeting_settings>().word, "hi");
}

TEST(app_settings, without_a_schema_there_is_nothing_to_hand_out) {
    config cfg;
    EXPECT_THROW((void)cfg.app_settings<greeting_settings>(), std::logic_error);
}

}  // namespace
}  // namespace preforkd
