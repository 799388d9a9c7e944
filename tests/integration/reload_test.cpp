// Zero-downtime operations with the real binary and a load running: reloads, binary
// upgrades, socket activation and systemd notifications. Each load scenario prints its
// figures (requests made, failed).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include "integration/fixture.hpp"
#include "integration/load.hpp"
#include "sys/systemd.hpp"

namespace preforkd::test {
namespace {

class zero_downtime : public server_test {
  protected:
    // Serves a 4 MiB file, downloads it at about 1 MiB/s and sends `sig` half a second in;
    // the file and the body received.
    std::pair<std::string, std::string> slow_download_across(int sig);
};

const std::string page(4096, 'p');

void report(const char* scenario, const load_result& r) {
    std::printf("[figures] %s: %llu requests, %llu failed, %llu reconnects\n", scenario,
                static_cast<unsigned long long>(r.requests),
                static_cast<unsigned long long>(r.failed),
                static_cast<unsigned long long>(r.reconnects));
    for (const auto& s : r.samples) std::printf("[figures]   failure: %s\n", s.c_str());
}

void send_signals(const server& s, int sig, int count, std::chrono::milliseconds gap) {
    for (int i = 0; i < count; ++i) {
        s.signal(sig);
        std::this_thread::sleep_for(gap);
    }
}

TEST_F(zero_downtime, connection_per_request_load_survives_20_reloads) {
    write_file(dir_.path() / "www/index.html", page);
    start();
    load_generator load({.port = port_,
                         .expected_body = page,
                         .threads = 2,
                         .keep_alive = false,
                         .duration = 3000ms});
    load.start();
    send_signals(*srv_, SIGHUP, 20, 100ms);
    auto r = load.wait();
    report("connection per request, 20 HUPs 100 ms apart", r);
    EXPECT_EQ(r.failed, 0u);
    EXPECT_GT(r.requests, 100u);
    // The reloads really happened, one after another. Not necessarily 20 generations: two
    // HUPs pending at the same moment (a slow supervisor under ASan) merge into one.
    auto count = [&](const std::string& what) { return count_in_log(srv_->error_log(), what); };
    EXPECT_TRUE(
        wait_until([&] { return count("reloading: generation") == count(" serves ("); }, 15s));
    EXPECT_GE(count(" serves ("), 10u) << srv_->error_log().substr(0, 4000);
    EXPECT_TRUE(zombie_children_of(srv_->pid()).empty());
}

TEST_F(zero_downtime, keep_alive_clients_control_run_without_signals) {
    write_file(dir_.path() / "www/index.html", page);
    // Reconnects then come from retiring workers only, never from the per-connection limit.
    cfg_.set("http", "max_keepalive_requests", "100000000");
    start();
    load_generator load({.port = port_,
                         .expected_body = page,
                         .threads = 8,
                         .keep_alive = true,
                         .duration = 2000ms});
    load.start();
    auto r = load.wait();
    report("8 keep-alive clients, no signal (control)", r);
    EXPECT_EQ(r.failed, 0u);
    EXPECT_EQ(r.reconnects, 0u);
    EXPECT_GT(r.requests, 1000u);
}

TEST_F(zero_downtime, keep_alive_clients_that_never_retry_survive_20_reloads) {
    write_file(dir_.path() / "www/index.html", page);
    cfg_.set("http", "max_keepalive_requests", "100000000");
    start();
    load_generator load({.port = port_,
                         .expected_body = page,
                         .threads = 8,
                         .keep_alive = true,
                         .duration = 6000ms});
    load.start();
    std::this_thread::sleep_for(200ms);
    send_signals(*srv_, SIGHUP, 20, 250ms);
    auto r = load.wait();
    report("8 keep-alive clients, 20 HUPs 250 ms apart", r);
    EXPECT_EQ(r.failed, 0u);
    EXPECT_GT(r.reconnects, 0u) << "retiring workers must have closed connections politely";
}

// An idle keep-alive connection of a retiring worker is neither closed early (that races with
// a request already on its way) nor left open: its next request is answered, with
// `Connection: close`, and then the connection closes.
TEST_F(zero_downtime, an_idle_keep_alive_connection_across_a_reload_gets_one_answer_and_close) {
    write_file(dir_.path() / "www/index.html", page);
    cfg_.set("workers", "start", "1");
    cfg_.set("workers", "min_spare", "0");
    cfg_.set("workers", "graceful_timeout", "\"30s\"");
    cfg_.set("http", "keepalive_timeout", "\"30s\"");
    start();
    ASSERT_TRUE(srv_->wait_workers(1));
    pid_t old_worker = srv_->workers()[0];
    const std::string get = "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
    http_client c(port_);
    ASSERT_TRUE(c.send(get));
    auto first = c.read_response();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200);
    EXPECT_TRUE(first->body == page);
    EXPECT_NE(first->header("connection"), "close");

    // The connection sits idle through the reload: the new generation serves, the old worker
    // has begun retiring and still holds it.
    srv_->signal(SIGHUP);
    std::string retiring = "worker[" + std::to_string(old_worker) + "]: retiring: ";
    ASSERT_TRUE(wait_until(
        [&] {
            std::string log = srv_->error_log();
            return log.find("generation 2 serves") != std::string::npos &&
                   log.find(retiring) != std::string::npos;
        },
        10s))
        << srv_->error_log();
    auto fresh = http_get(port_, "/index.html");
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->status, 200);
    std::this_thread::sleep_for(300ms);
    auto workers = srv_->workers();
    ASSERT_NE(std::find(workers.begin(), workers.end(), old_worker), workers.end())
        << "the retiring worker left without waiting for its idle connection";

    ASSERT_TRUE(c.send(get));
    auto second = c.read_response();
    ASSERT_TRUE(second) << srv_->error_log();
    EXPECT_EQ(second->status, 200);
    EXPECT_EQ(second->body.size(), page.size());
    EXPECT_TRUE(second->body == page);
    EXPECT_EQ(second->header("connection"), "close");
    EXPECT_TRUE(c.closed_by_peer(2s));
    // With its last connection gone, the old worker leaves long before graceful_timeout.
    EXPECT_TRUE(wait_until(
        [&] {
            auto w = srv_->workers();
            return std::find(w.begin(), w.end(), old_worker) == w.end();
        },
        3s));
}

// Reads a 4 MiB file at about 1 MiB/s; returns the body.
std::string slow_download(uint16_t port, const std::string& target) {
    http_client c(port, 10s);
    int small = 16384;
    ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string got;
    char buf[16384];
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
        ssize_t n = ::recv(c.fd(), buf, sizeof(buf), 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
        auto hdr = got.find("\r\n\r\n");
        if (hdr != std::string::npos && got.size() - hdr - 4 >= (4u << 20)) break;
        std::this_thread::sleep_for(15ms);
    }
    auto hdr = got.find("\r\n\r\n");
    return hdr == std::string::npos ? std::string() : got.substr(hdr + 4);
}

std::pair<std::string, std::string> zero_downtime::slow_download_across(int sig) {
    std::string big = random_bytes(4u << 20, 7);
    write_file(dir_.path() / "www/big.bin", big);
    cfg_.set("workers", "graceful_timeout", "\"30s\"");
    start();
    if (HasFatalFailure()) return {big, ""};
    std::string body;
    std::thread t([&] { body = slow_download(port_, "/big.bin"); });
    std::this_thread::sleep_for(500ms);
    srv_->signal(sig);
    t.join();
    return {big, body};
}

TEST_F(zero_downtime, a_slow_download_completes_byte_exact_across_a_reload) {
    auto [big, body] = slow_download_across(SIGHUP);
    EXPECT_EQ(body.size(), big.size());
    EXPECT_TRUE(body == big);
}

TEST_F(zero_downtime, a_slow_download_completes_byte_exact_across_a_graceful_stop) {
    auto [big, body] = slow_download_across(SIGQUIT);
    EXPECT_TRUE(body == big) << body.size() << " of " << big.size() << " bytes";
    EXPECT_EQ(srv_->wait_exit(10s), 0);
}

TEST_F(zero_downtime, reload_keeps_unchanged_sockets_and_adds_and_removes_others) {
    uint16_t second = free_port();
    start();
    auto before = socket_links(srv_->pid());
    cfg_.set("server", "listen",
             "[\"127.0.0.1:" + std::to_string(port_) + "\", \"127.0.0.1:" + std::to_string(second) +
                 "\"]");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return http_get(second, "/index.html").has_value(); }, 5s));
    auto after_add = socket_links(srv_->pid());
    // The first listener is the very same socket (same inode) in the supervisor.
    for (const auto& s : before)
        EXPECT_NE(std::find(after_add.begin(), after_add.end(), s), after_add.end()) << s;
    // Now remove the first address: it stops answering once the old generation is gone.
    cfg_.set("server", "listen", "[\"127.0.0.1:" + std::to_string(second) + "\"]");
    rewrite_config();
    srv_->signal(SIGHUP);
    EXPECT_TRUE(wait_until([&] { return !http_client(port_).connected(); }, 10s));
    auto r = http_get(second, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(zero_downtime, binary_upgrade_under_load_then_quit_the_old_one) {
    write_file(dir_.path() / "www/index.html", page);
    start();
    pid_t old_pid = srv_->pid();
    load_generator load({.port = port_,
                         .expected_body = page,
                         .threads = 2,
                         .keep_alive = false,
                         .duration = 4000ms});
    load.start();
    std::this_thread::sleep_for(300ms);
    srv_->signal(SIGUSR2);
    // The new supervisor is our server's child; it writes the pid file once it serves.
    pid_t new_pid = wait_new_pid(srv_->pid_file(), old_pid, 5s);
    ASSERT_GT(new_pid, 0) << srv_->error_log();
    EXPECT_EQ(read_pid_file(srv_->pid_file().string() + ".oldbin"), old_pid);
    // Both generations serve for a while, then the old one is told to go.
    std::this_thread::sleep_for(800ms);
    EXPECT_FALSE(children_of(new_pid).empty());
    srv_->signal(SIGQUIT);
    EXPECT_EQ(srv_->wait_exit(10s), 0);
    auto r = load.wait();
    report("USR2 then QUIT of the old supervisor, connection per request", r);
    EXPECT_EQ(r.failed, 0u);
    EXPECT_FALSE(fs::exists(srv_->pid_file().string() + ".oldbin"));
    auto resp = http_get(port_, "/index.html");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
    ::kill(new_pid, SIGTERM);
    EXPECT_TRUE(wait_gone(new_pid, 7s));
}

TEST_F(zero_downtime, binary_upgrade_rolls_back_when_the_new_one_is_terminated) {
    start();
    pid_t old_pid = srv_->pid();
    srv_->signal(SIGUSR2);
    pid_t new_pid = wait_new_pid(srv_->pid_file(), old_pid, 5s);
    ASSERT_GT(new_pid, 0);
    ::kill(new_pid, SIGTERM);
    EXPECT_TRUE(wait_until([&] { return read_pid_file(srv_->pid_file()) == old_pid; }, 8s))
        << srv_->error_log();
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(srv_->wait_workers(2));
}

TEST_F(zero_downtime, a_broken_new_binary_leaves_the_old_one_serving) {
    // Run from a copy, so the file "on disk" can be replaced by a broken one.
    fs::path exe = dir_.path() / "preforkd";
    fs::copy_file(PREFORKD_BINARY, exe);
    write_file(dir_.path() / "www/index.html", "still here\n");
    start({"-F"}, {.binary = exe.string()});
    ASSERT_FALSE(HasFatalFailure());
    fs::remove(exe);
    write_file(exe, "#!/bin/sh\nexit 1\n");
    fs::permissions(exe, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    srv_->signal(SIGUSR2);
    EXPECT_TRUE(wait_until(
        [&] { return srv_->error_log().find("exited with status 1") != std::string::npos; }, 5s))
        << srv_->error_log();
    EXPECT_TRUE(wait_until([&] { return read_pid_file(srv_->pid_file()) == srv_->pid(); }, 3s));
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "still here\n");
}

int bound_listener(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 || ::listen(fd, 128) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

TEST_F(zero_downtime, socket_activation_adopts_the_passed_socket) {
    if (!sys::systemd_support()) GTEST_SKIP() << "built without systemd (PREFORKD_SYSTEMD=OFF)";
    int fd = bound_listener(port_);
    ASSERT_GE(fd, 0);
    std::string inode = fs::read_symlink("/proc/self/fd/" + std::to_string(fd)).string();
    write_file(dir_.path() / "www/index.html", "activated\n");
    start({"-F"}, {.listen_fd = fd});
    ASSERT_FALSE(HasFatalFailure());
    ::close(fd);  // only the server holds it now
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "activated\n");
    auto links = socket_links(srv_->pid());
    EXPECT_NE(std::find(links.begin(), links.end(), inode), links.end()) << inode;
    EXPECT_NE(srv_->error_log().find("(from systemd)"), std::string::npos);
}

// A datagram socket standing in for systemd's NOTIFY_SOCKET.
class notify_listener {
  public:
    explicit notify_listener(const fs::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path.c_str());
        ::bind(fd_, reinterpret_cast<sockaddr*>(&sun), sizeof(sun));
        timeval tv{0, 100'000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    ~notify_listener() { ::close(fd_); }
    // Collects messages until one contains `want` (or the timeout).
    bool wait_for(const std::string& want, std::chrono::milliseconds timeout) {
        return wait_until(
            [&] {
                char buf[4096];
                ssize_t n;
                while ((n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                    log_ += std::string(buf, static_cast<size_t>(n)) + "\n--\n";
                return log_.find(want, seen_) != std::string::npos &&
                       (seen_ = log_.find(want, seen_) + want.size(), true);
            },
            timeout);
    }
    const std::string& log() const { return log_; }

  private:
    fs::path path_;
    int fd_ = -1;
    std::string log_;
    size_t seen_ = 0;
};

TEST_F(zero_downtime, systemd_notifications_for_ready_reload_and_stop) {
    if (!sys::systemd_support()) GTEST_SKIP() << "built without systemd (PREFORKD_SYSTEMD=OFF)";
    notify_listener n(dir_.path() / "notify.sock");
    start({"-F"}, {.env = {"NOTIFY_SOCKET=" + (dir_.path() / "notify.sock").string()}});
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_TRUE(n.wait_for("READY=1", 3s)) << n.log();
    srv_->signal(SIGHUP);
    EXPECT_TRUE(n.wait_for("RELOADING=1", 3s)) << n.log();
    EXPECT_TRUE(n.wait_for("READY=1", 5s)) << n.log();
    srv_->signal(SIGTERM);
    EXPECT_TRUE(n.wait_for("STOPPING=1", 3s)) << n.log();
    EXPECT_EQ(srv_->wait_exit(7s), 0);
}

TEST_F(zero_downtime, upgrade_hands_mainpid_to_the_new_supervisor) {
    if (!sys::systemd_support()) GTEST_SKIP() << "built without systemd (PREFORKD_SYSTEMD=OFF)";
    notify_listener n(dir_.path() / "notify.sock");
    start({"-F"}, {.env = {"NOTIFY_SOCKET=" + (dir_.path() / "notify.sock").string()}});
    ASSERT_FALSE(HasFatalFailure());
    pid_t old_pid = srv_->pid();
    srv_->signal(SIGUSR2);
    pid_t new_pid = wait_new_pid(srv_->pid_file(), old_pid, 5s);
    ASSERT_GT(new_pid, 0);
    srv_->signal(SIGQUIT);
    EXPECT_TRUE(n.wait_for("MAINPID=" + std::to_string(new_pid), 3s)) << n.log();
    EXPECT_EQ(srv_->wait_exit(10s), 0);
    ::kill(new_pid, SIGTERM);
    EXPECT_TRUE(wait_gone(new_pid, 7s));
}

// A GET on a fresh connection to the unix socket at `path`: the status line, or "".
std::string unix_get_status_line(const fs::path& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path.c_str());
    std::string got;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0) {
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string req = "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
            char buf[256];
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) got.assign(buf, static_cast<size_t>(n));
        }
    }
    ::close(fd);
    return got.substr(0, got.find("\r\n"));
}

// Waits for the new supervisor an upgrade (USR2) started to name itself in the pid file.
pid_t wait_new_binary(const server& s, pid_t old_pid) {
    pid_t new_pid = 0;
    wait_until(
        [&] {
            new_pid = std::atoi(read_file(s.pid_file()).c_str());
            return new_pid > 0 && new_pid != old_pid;
        },
        5s);
    return new_pid != old_pid ? new_pid : 0;
}

// Issue 18.3: the new binary of an upgrade inherits the unix socket; rolled back (TERM), it
// used to unlink the socket file the old supervisor goes on serving, so no new client could
// reach it. Only sockets a process bound itself are its to unlink.
TEST_F(zero_downtime, a_rolled_back_upgrade_leaves_the_unix_socket_file_of_the_old_one) {
    fs::path sock = dir_.path() / "p.sock";
    cfg_.set("server", "listen",
             "[\"127.0.0.1:" + std::to_string(port_) + "\", \"unix:" + sock.string() + "\"]");
    start();
    ASSERT_EQ(unix_get_status_line(sock), "HTTP/1.1 200 OK");
    pid_t old_pid = srv_->pid();
    srv_->signal(SIGUSR2);
    pid_t new_pid = wait_new_binary(*srv_, old_pid);
    ASSERT_GT(new_pid, 0) << srv_->error_log();
    ::kill(new_pid, SIGTERM);
    ASSERT_TRUE(
        wait_until([&] { return std::atoi(read_file(srv_->pid_file()).c_str()) == old_pid; }, 8s))
        << srv_->error_log();
    EXPECT_TRUE(fs::exists(sock)) << srv_->error_log();
    EXPECT_EQ(unix_get_status_line(sock), "HTTP/1.1 200 OK");
    // The old supervisor bound it: it removes it when it stops.
    EXPECT_EQ(srv_->stop(SIGTERM), 0);
    EXPECT_FALSE(fs::exists(sock));
}

// Issue 18.7: a USR2 sent to the new binary while the old supervisor still runs would start
// a third supervisor, the oldest then named in no file. The new one ignores it and says why.
TEST_F(zero_downtime, usr2_to_the_new_binary_while_the_old_one_runs_is_ignored) {
    start();
    pid_t old_pid = srv_->pid();
    srv_->signal(SIGUSR2);
    pid_t new_pid = wait_new_binary(*srv_, old_pid);
    ASSERT_GT(new_pid, 0) << srv_->error_log();
    ASSERT_TRUE(wait_until([&] { return children_of(new_pid).size() == 2; }, 5s));
    auto before = children_of(new_pid);
    ::kill(new_pid, SIGUSR2);
    ASSERT_TRUE(
        wait_until([&] { return count_in_log(srv_->error_log(), "received USR2") == 2; }, 3s));
    std::this_thread::sleep_for(500ms);
    std::string log = srv_->error_log();
    EXPECT_EQ(count_in_log(log, "USR2: started the new binary"), 1u) << log;
    EXPECT_NE(log.find("USR2 ignored"), std::string::npos) << log;
    EXPECT_EQ(children_of(new_pid), before);
    // Clean up whatever runs: the new binary (and on failure, the third one it started).
    for (pid_t p : children_of(new_pid))
        if (std::find(before.begin(), before.end(), p) == before.end()) ::kill(p, SIGTERM);
    ::kill(new_pid, SIGTERM);
    EXPECT_TRUE(wait_until([&] { return ::kill(new_pid, 0) != 0; }, 8s));
}

// Issue 18.5: a listener removed by a reload closes as soon as the new generation serves,
// not when the last old worker leaves (up to graceful_timeout later): the supervisor's copy
// kept the kernel completing connections that nobody would ever accept.
TEST_F(zero_downtime, a_listener_removed_by_a_reload_refuses_connections_once_the_new_one_serves) {
    uint16_t second = free_port();
    auto listen_on = [&](std::vector<uint16_t> ports) {
        std::string v = "[";
        for (uint16_t p : ports)
            v +=
                (v.size() > 1 ? ", " : "") + std::string("\"127.0.0.1:") + std::to_string(p) + "\"";
        cfg_.set("server", "listen", v + "]");
    };
    listen_on({port_, second});
    cfg_.set("workers", "graceful_timeout", "\"30s\"");
    write_file(dir_.path() / "www/big.bin", std::string(16 << 20, 'b'));
    start();
    // An old worker kept busy: a 16 MB answer to a client that does not read.
    int slow = connect_loopback(port_, 0, 4096);
    ASSERT_GE(slow, 0);
    std::string req = "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(slow, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    std::this_thread::sleep_for(300ms);
    listen_on({port_});
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("generation 2 serves") != std::string::npos; }, 10s))
        << srv_->error_log();
    EXPECT_TRUE(wait_until(
        [&] {
            int fd = connect_loopback(second);
            if (fd < 0) return true;
            ::close(fd);
            return false;
        },
        2s))
        << "the removed listener still completes connections\n"
        << srv_->error_log();
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ::close(slow);
}

// Issue 18.5, unix sockets: a unix listener a reload removes closes once the new generation
// serves, and its socket file (bound by this supervisor) goes with it.
TEST_F(zero_downtime, a_unix_listener_removed_by_a_reload_goes_with_its_file) {
    fs::path sock = dir_.path() / "gone.sock";
    cfg_.set("server", "listen",
             "[\"127.0.0.1:" + std::to_string(port_) + "\", \"unix:" + sock.string() + "\"]");
    start();
    ASSERT_EQ(unix_get_status_line(sock), "HTTP/1.1 200 OK");
    cfg_.set("server", "listen", "[\"127.0.0.1:" + std::to_string(port_) + "\"]");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("generation 2 serves") != std::string::npos; }, 10s))
        << srv_->error_log();
    EXPECT_TRUE(wait_until([&] { return !fs::exists(sock); }, 2s)) << srv_->error_log();
    EXPECT_EQ(unix_get_status_line(sock), "");
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

// How many of PID's descriptors name `target` (a folder: an O_PATH docroot).
size_t fds_naming(pid_t pid, const fs::path& target) {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        std::error_code ec2;
        if (fs::read_symlink(e.path(), ec2) == target) ++n;
    }
    return n;
}

// Issue 18.10: http.root is opened (O_PATH) when a configuration is loaded; each old
// generation's leaked into the workers of every newer one, keeping the old docroot busy (it
// could not be unmounted). A worker holds its own generation's only.
TEST_F(zero_downtime, workers_of_a_new_generation_hold_no_older_docroot) {
    fs::path www2 = dir_.path() / "www2";
    write_file(www2 / "index.html", "two\n");
    start();
    auto old_workers = srv_->workers();
    ASSERT_EQ(old_workers.size(), 2u);
    for (pid_t w : old_workers) EXPECT_EQ(fds_naming(w, srv_->root()), 1u);
    cfg_.set("http", "root", "\"" + www2.string() + "\"");
    rewrite_config();
    srv_->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] {
            auto w = srv_->workers();
            return w.size() == 2 && std::none_of(w.begin(), w.end(), [&](pid_t p) {
                       return std::find(old_workers.begin(), old_workers.end(), p) !=
                              old_workers.end();
                   });
        },
        10s))
        << srv_->error_log();
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "two\n");
    for (pid_t w : srv_->workers()) {
        EXPECT_EQ(fds_naming(w, srv_->root()), 0u) << "worker " << w << " holds the old docroot";
        EXPECT_EQ(fds_naming(w, www2), 1u) << "worker " << w;
    }
}

}  // namespace
}  // namespace preforkd::test
