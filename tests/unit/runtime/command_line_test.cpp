#include "runtime/command_line.hpp"

#include <gtest/gtest.h>

namespace preforkd {
namespace {

result<command_line> parse(std::vector<std::string> args) {
    return parse_command_line(args, "/etc/preforkd/preforkd.toml");
}

TEST(command_line, defaults) {
    auto cl = parse({});
    ASSERT_TRUE(cl);
    EXPECT_EQ(cl->config_path, "/etc/preforkd/preforkd.toml");
    EXPECT_FALSE(cl->foreground);
    EXPECT_FALSE(cl->test);
    EXPECT_TRUE(cl->signal.empty());
}

TEST(command_line, config_in_every_spelling) {
    for (auto args : std::vector<std::vector<std::string>>{
             {"-c", "/x.toml"}, {"-c/x.toml"}, {"--config", "/x.toml"}, {"--config=/x.toml"}}) {
        auto cl = parse(args);
        ASSERT_TRUE(cl) << args[0];
        EXPECT_EQ(cl->config_path, "/x.toml") << args[0];
    }
}

TEST(command_line, flags) {
    auto cl = parse({"-F", "-t", "--version", "--help"});
    ASSERT_TRUE(cl);
    EXPECT_TRUE(cl->foreground);
    EXPECT_TRUE(cl->test);
    EXPECT_TRUE(cl->version);
    EXPECT_TRUE(cl->help);
}

TEST(command_line, signal_verbs) {
    for (std::string v : {"reload", "stop", "quit", "reopen"}) {
        auto cl = parse({"-s", v});
        ASSERT_TRUE(cl) << v;
        EXPECT_EQ(cl->signal, v);
    }
    auto bad = parse({"-s", "restart"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.err().message.find("restart"), std::string::npos);
}

TEST(command_line, missing_value_and_unknown_argument_are_errors) {
    EXPECT_FALSE(parse({"-c"}));
    EXPECT_FALSE(parse({"-s"}));
    auto r = parse({"-x"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().message, "unknown argument -x");
}

TEST(command_line, status_and_watch) {
    auto st = parse({"--status", "-c", "/x.toml"});
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->status);
    EXPECT_FALSE(st->watch);
    EXPECT_EQ(st->config_path, "/x.toml");
    auto w = parse({"--watch", "--status"});
    ASSERT_TRUE(w);
    EXPECT_TRUE(w->status);
    EXPECT_TRUE(w->watch);
    auto alone = parse({"--watch"});
    ASSERT_FALSE(alone);
    EXPECT_EQ(alone.err().message, "--watch goes with --status");
    for (auto args : std::vector<std::vector<std::string>>{
             {"--status", "-t"}, {"--status", "-s", "stop"}, {"--status", "-F"}}) {
        auto bad = parse(args);
        ASSERT_FALSE(bad) << args[1];
        EXPECT_EQ(bad.err().message, "--status goes with -c and --watch only");
    }
    const std::string u = usage("preforkd", "/etc/preforkd/preforkd.toml");
    EXPECT_NE(u.find("--status [--watch]"), std::string::npos) << u;
}

}  // namespace
}  // namespace preforkd
