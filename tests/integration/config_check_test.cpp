// `-t` is the promise that a start or reload works: what start-up or a reload would refuse,
// -t refuses first, with the same `file:line: key` line, and a failed start or reload leaves
// no socket file behind.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "integration/fixture.hpp"

namespace preforkd::test {
namespace {

using config_check = server_test;

// 1-based line of the first line of `toml` that starts with `key = `.
int line_of(const std::string& toml, const std::string& key) {
    size_t at = toml.find("\n" + key + " = ");
    if (at == std::string::npos) return -1;
    return static_cast<int>(std::count(toml.begin(), toml.begin() + static_cast<long>(at), '\n')) +
           2;
}

// A loopback TCP socket listening on a port of its own: that port is taken.
struct busy_port {
    int fd = -1;
    uint16_t port = 0;
    busy_port() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sin;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), len) == 0 && ::listen(fd, 1) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0)
            port = ntohs(sin.sin_port);
    }
    ~busy_port() { ::close(fd); }
};

class refused : public config_check {
  protected:
    // Writes the config, then: -t exits 1 with `want` (prefixed "preforkd: file:LINE: "),
    // and a foreground start exits 1 with the same line, having started no worker.
    void expect_refused(const std::string& key, const std::string& want) {
        srv_ = std::make_unique<server>(dir_.path(), port_);
        std::string toml = cfg_.render();
        srv_->write_config(toml);
        int line = line_of(toml, key);
        ASSERT_GT(line, 0) << toml;
        std::string file = srv_->config_path().string();
        std::string line_text = "preforkd: " + file + ":" + std::to_string(line) + ": " + want;
        auto t = run_binary({"-t", "-c", file});
        EXPECT_EQ(t.status, 1) << t.output;
        EXPECT_EQ(t.output, line_text + "\n");
        auto f = run_binary({"-F", "-c", file});
        EXPECT_EQ(f.status, 1) << f.output;
        EXPECT_NE(f.output.find(line_text), std::string::npos) << f.output;
        EXPECT_EQ(f.output.find("spawned worker"), std::string::npos) << f.output;
    }
};

TEST_F(refused, a_wildcard_beside_a_specific_address_on_the_same_port) {
    std::string p = std::to_string(port_);
    cfg_.set("server", "listen", "[\"*:" + p + "\", \"127.0.0.1:" + p + "\"]");
    expect_refused("listen", "server.listen lists 0.0.0.0:" + p + " and 127.0.0.1:" + p +
                                 ": the wildcard address already takes port " + p +
                                 " on every address (keep one of them)");
}

TEST_F(refused, the_same_unix_socket_spelled_two_ways) {
    std::string sock = (dir_.path() / "x.sock").string();
    cfg_.set("server", "listen",
             "[\"127.0.0.1:" + std::to_string(port_) + "\", \"unix:" + sock + "\", \"unix:/" +
                 sock + "\"]");
    expect_refused("listen", "server.listen lists unix:" + sock + " twice");
    EXPECT_FALSE(fs::exists(sock));
}

TEST_F(refused, an_ipv4_mapped_ipv6_address) {
    std::string p = std::to_string(port_);
    cfg_.set("server", "listen", "[\"[::ffff:127.0.0.1]:" + p + "\"]");
    expect_refused("listen", "server.listen \"[::ffff:127.0.0.1]:" + p +
                                 "\" is an IPv4-mapped address, which an IPv6-only listener "
                                 "cannot bind: write 127.0.0.1:" +
                                 p);
}

TEST_F(refused, an_error_log_that_is_a_folder) {
    fs::create_directories(dir_.path() / "logs");
    cfg_.set("log", "error", "\"" + (dir_.path() / "logs").string() + "\"");
    expect_refused("error", "log.error \"" + (dir_.path() / "logs").string() +
                                "\" is a folder, not a log file");
}

TEST_F(refused, an_access_log_in_a_missing_folder) {
    fs::path log = dir_.path() / "nope" / "access.log";
    cfg_.set("log", "access", "\"" + log.string() + "\"");
    expect_refused("access", "log.access \"" + log.string() + "\": folder \"" +
                                 (dir_.path() / "nope").string() +
                                 "\" does not exist (start-up does not create it)");
}

TEST_F(refused, a_pid_file_that_is_a_folder) {
    fs::create_directories(dir_.path() / "run");
    cfg_.set("server", "pid_file", "\"" + (dir_.path() / "run").string() + "\"");
    expect_refused("pid_file", "server.pid_file \"" + (dir_.path() / "run").string() +
                                   "\" is a folder, not a file");
}

TEST_F(refused, an_rlimit_nofile_with_no_room_beside_the_listeners) {
    // 16 distinct addresses on one port.
    std::string listen = "[";
    for (int i = 0; i < 16; ++i)
        listen += "\"127.0.0." + std::to_string(i + 2) + ":" + std::to_string(port_) + "\",";
    listen += "]";
    cfg_.set("server", "listen", listen);
    cfg_.set("workers", "rlimit_nofile", "16");
    expect_refused("rlimit_nofile",
                   "workers.rlimit_nofile (16) is too small for 16 listener(s): a worker holds "
                   "each of them, 8 descriptors of its own and needs 8 for connections; at least "
                   "32 (or 0 to inherit)");
}

TEST_F(config_check, a_bind_error_names_the_listen_entry_and_leaves_no_socket_file) {
    busy_port busy;
    ASSERT_GT(busy.port, 0);
    std::string sock = (dir_.path() / "a.sock").string();
    cfg_.set("server", "listen",
             "[\n  \"unix:" + sock + "\",\n  \"127.0.0.1:" + std::to_string(port_) +
                 "\",\n  \"127.0.0.1:" + std::to_string(busy.port) + "\",\n]");
    srv_ = std::make_unique<server>(dir_.path(), port_);
    std::string toml = cfg_.render();
    srv_->write_config(toml);
    int line = line_of(toml, "listen") + 3;  // the third entry's own line
    std::string file = srv_->config_path().string();
    EXPECT_EQ(run_binary({"-t", "-c", file}).status, 0);  // a port taken now: not -t's business
    auto f = run_binary({"-F", "-c", file});
    EXPECT_EQ(f.status, 1) << f.output;
    EXPECT_NE(f.output.find("preforkd: " + file + ":" + std::to_string(line) +
                            ": server.listen[2] \"127.0.0.1:" + std::to_string(busy.port) +
                            "\": Address already in use"),
              std::string::npos)
        << f.output;
    EXPECT_FALSE(fs::exists(sock)) << "a failed start must remove the socket file it made";
}

TEST_F(config_check, a_failed_reload_removes_the_unix_socket_it_made) {
    start();
    busy_port busy;
    ASSERT_GT(busy.port, 0);
    std::string sock = (dir_.path() / "b.sock").string();
    cfg_.set("server", "listen",
             "[\"127.0.0.1:" + std::to_string(port_) + "\", \"unix:" + sock +
                 "\", \"127.0.0.1:" + std::to_string(busy.port) + "\"]");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reload failed") != std::string::npos; }, 5s))
        << srv_->error_log();
    EXPECT_NE(srv_->error_log().find("server.listen[2] \"127.0.0.1:" + std::to_string(busy.port) +
                                     "\": Address already in use"),
              std::string::npos)
        << srv_->error_log();
    EXPECT_FALSE(fs::exists(sock));
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(config_check, a_reload_to_a_log_in_a_missing_folder_is_refused_before_anything_changes) {
    start();
    fs::path log = dir_.path() / "gone" / "access.log";
    cfg_.set("log", "access", "\"" + log.string() + "\"");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reload failed") != std::string::npos; }, 5s))
        << srv_->error_log();
    EXPECT_NE(srv_->error_log().find("log.access \"" + log.string() + "\": folder"),
              std::string::npos)
        << srv_->error_log();
    EXPECT_EQ(srv_->error_log().find("generation 2"), std::string::npos) << srv_->error_log();
}

TEST_F(config_check, a_reload_to_an_rlimit_nofile_with_no_room_for_the_listeners_is_refused) {
    start();
    // The reproduction of issue 18.2: 16 listeners and 16 descriptors made workers that die at
    // start (EMFILE on their signalfd) while the old generation drained.
    std::string listen = "[";
    for (int i = 0; i < 16; ++i)
        listen += "\"127.0.0." + std::to_string(i + 1) + ":" + std::to_string(port_) + "\",";
    listen += "]";
    cfg_.set("server", "listen", listen);
    cfg_.set("workers", "rlimit_nofile", "16");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("reload failed") != std::string::npos; }, 5s))
        << srv_->error_log();
    EXPECT_NE(srv_->error_log().find("workers.rlimit_nofile (16) is too small for 16 listener(s)"),
              std::string::npos)
        << srv_->error_log();
    EXPECT_EQ(srv_->error_log().find("generation 2"), std::string::npos) << srv_->error_log();
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace preforkd::test
