// The examples' test fixture: a line client and a server of one of the example binaries
// (examples_test.cpp, examples_engine_test.cpp).
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "integration/harness.hpp"

namespace preforkd::test {

// A line-protocol client. Every read is bounded by its timeout.
class line_client {
  public:
    explicit line_client(uint16_t port, std::chrono::milliseconds timeout = 5s)
        : timeout_(timeout) {
        fd_ = connect_loopback(port);
    }
    ~line_client() {
        if (fd_ >= 0) ::close(fd_);
    }
    line_client(const line_client&) = delete;
    line_client& operator=(const line_client&) = delete;

    bool connected() const { return fd_ >= 0; }
    bool send(const std::string& bytes) {
        return fd_ >= 0 && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                               static_cast<ssize_t>(bytes.size());
    }
    // The next line without its "\n"; nullopt on EOF or timeout.
    std::optional<std::string> line() {
        for (;;) {
            auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return l;
            }
            if (!fill()) return std::nullopt;
        }
    }
    void close_write() { ::shutdown(fd_, SHUT_WR); }
    std::optional<std::string> ask(const std::string& command) {
        if (!send(command + "\n")) return std::nullopt;
        return line();
    }
    // True if the server closed the connection within `timeout` (data before EOF is kept).
    bool closed_by_peer(std::chrono::milliseconds timeout) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            char tmp[4096];
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
            if (n > 0) buf_.append(tmp, static_cast<size_t>(n));
        }
        return false;
    }

  private:
    bool fill() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout_.count())) <= 0) return false;
        char tmp[4096];
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }

    int fd_ = -1;
    std::chrono::milliseconds timeout_;
    std::string buf_;
};

// A server of one of the example binaries, with [server], [workers], [log] and the
// application's own tables written as given.
class example_test : public ::testing::Test {
  protected:
    example_test() : port_(free_port()) {}

    // `tables`: {"workers", "start = 2\nmax = 4\n"}: "key = value" lines, each replacing the
    // default of its key (below) or added.
    std::string render(const std::map<std::string, std::string>& tables) const {
        auto q = [](const fs::path& p) { return "\"" + p.string() + "\""; };
        std::map<std::string, std::map<std::string, std::string>> t = {
            {"server",
             {{"listen", "[\"127.0.0.1:" + std::to_string(port_) + "\"]"},
              {"pid_file", q(dir_.path() / "preforkd.pid")}}},
            {"workers", {{"start", "2"}, {"graceful_timeout", "\"5s\""}}},
            {"log",
             {{"error", q(dir_.path() / "error.log")},
              {"access", "\"off\""},
              {"level", "\"debug\""}}}};
        for (const auto& [name, body] : tables) {
            auto& kv = t[name];
            size_t at = 0;
            while (at < body.size()) {
                size_t nl = body.find('\n', at);
                std::string line = body.substr(at, nl - at);
                at = nl == std::string::npos ? body.size() : nl + 1;
                size_t eq = line.find(" = ");
                if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 3);
            }
        }
        std::string out;
        for (const auto& [name, kv] : t) {
            out += "[" + name + "]\n";
            for (const auto& [k, v] : kv) out += k + " = " + v + "\n";
        }
        return out;
    }
    void start(const std::string& binary, std::map<std::string, std::string> tables = {},
               spawn_options so = {}) {
        binary_ = binary;
        srv_ = std::make_unique<server>(dir_.path(), port_);
        srv_->write_config(render(tables));
        so.binary = binary;
        ASSERT_TRUE(srv_->start({"-F"}, so)) << "server did not start; output:\n"
                                             << srv_->output() << "\nerror log:\n"
                                             << srv_->error_log();
    }
    void rewrite(std::map<std::string, std::string> tables) { srv_->write_config(render(tables)); }
    // The workers of generation `g` (2 and later: reloads) are up.
    bool wait_generation(int g, std::chrono::milliseconds timeout = 10s) {
        std::string needle = "generation " + std::to_string(g) + " serves";
        return wait_until([&] { return srv_->error_log().find(needle) != std::string::npos; },
                          timeout);
    }
    // Lines of the error log containing `what`.
    size_t log_count(const std::string& what) const {
        return count_in_log(srv_->error_log(), what);
    }

    temp_dir dir_;
    uint16_t port_;
    std::string binary_;
    std::unique_ptr<server> srv_;
};

inline int64_t since_ms(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t)
        .count();
}

}  // namespace preforkd::test
