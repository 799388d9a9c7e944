// Drives one HTTP session by hand over a socketpair, the way the worker's loop would.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/log.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/service.hpp>
#include <string>
#include <vector>

#include "http/http_config.hpp"
#include "http/session.hpp"
#include "worker/context_access.hpp"

namespace preforkd::http::testing {

struct response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::string head;
    bool has(const std::string& name) const { return headers.count(name) != 0; }
    std::string operator[](const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

// Splits a byte stream into responses. `no_body[i]` marks the i-th as an answer to HEAD.
inline std::vector<response> parse_responses(std::string raw, std::vector<bool> no_body = {}) {
    std::vector<response> out;
    while (!raw.empty()) {
        size_t end = raw.find("\r\n\r\n");
        if (end == std::string::npos) {
            ADD_FAILURE() << "truncated head: " << raw.substr(0, 200);
            break;
        }
        response r;
        r.head = raw.substr(0, end + 4);
        std::string head = raw.substr(0, end);
        raw.erase(0, end + 4);
        size_t nl = head.find("\r\n");
        std::string status_line = head.substr(0, nl);
        if (status_line.rfind("HTTP/1.1 ", 0) != 0) {
            ADD_FAILURE() << "bad status line: " << status_line;
            break;
        }
        r.status = std::stoi(status_line.substr(9, 3));
        while (nl != std::string::npos) {
            size_t next = head.find("\r\n", nl + 2);
            std::string line =
                head.substr(nl + 2, next == std::string::npos ? std::string::npos : next - nl - 2);
            size_t colon = line.find(':');
            std::string name = line.substr(0, colon);
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            r.headers[name] = value;
            nl = next;
        }
        bool skip = (out.size() < no_body.size() && no_body[out.size()]) || r.status == 304;
        if (!skip && r.has("content-length")) {
            size_t len = std::stoul(r["content-length"]);
            if (raw.size() < len) {
                ADD_FAILURE() << "truncated body";
                break;
            }
            r.body = raw.substr(0, len);
            raw.erase(0, len);
        }
        out.push_back(std::move(r));
    }
    return out;
}

inline sockaddr_storage v4_peer(const char* a) {
    sockaddr_storage ss{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    ::inet_pton(AF_INET, a, &sin->sin_addr);
    return ss;
}

class session_fixture : public ::testing::Test {
  protected:
    void SetUp() override {
        ::signal(SIGPIPE, SIG_IGN);  // sendfile has no MSG_NOSIGNAL; the worker ignores SIGPIPE
        namespace fs = std::filesystem;
        // Parameterised test names hold a '/': flattened, so that base_ is one folder and
        // TearDown's remove_all takes all of it.
        std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::replace(name.begin(), name.end(), '/', '_');
        base_ = fs::temp_directory_path() /
                ("preforkd-session-" + std::to_string(::getpid()) + "-" + name);
        fs::remove_all(base_);
        root_ = base_ / "www";
        fs::create_directories(root_ / "docs");
        fs::create_directories(root_ / "empty");
        write_file("index.html", "<!DOCTYPE html><h1>hello</h1>\n");
        std::string hundred;
        for (int i = 0; i < 10; ++i) hundred += "0123456789";
        write_file("a.txt", hundred);
        big_.resize(300 * 1024);
        for (size_t i = 0; i < big_.size(); ++i) big_[i] = static_cast<char>('a' + (i * 7) % 26);
        write_file("big.bin", big_);
        write_file("docs/index.html", "docs index\n");
        write_file(".secret", "hidden");
        std::ofstream(base_ / "outside.txt") << "outside";
        fs::create_symlink(base_ / "outside.txt", root_ / "escape.txt");

        settings_ = std::make_shared<http_settings>();
        settings_->root = root_.string();
        settings_->root_fd.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        ASSERT_TRUE(settings_->root_fd.valid());
        settings_->mime = mime_table::builtin();
        settings_->status_allow.push_back(*preforkd::detail::parse_cidr("127.0.0.1/32"));
        cfg_.app = settings_;

        auto board = scoreboard::create(4);
        ASSERT_TRUE(board.ok());
        board_ = std::move(*board);
        board_.header().supervisor_pid = 4242;
        board_.header().generation = 7;
        board_.prepare(0, 7, 0);
        board_.slot(0).pid = static_cast<int32_t>(::getpid());
        board_.slot(0).set_state(worker_state::idle);
        ctx_ = std::make_unique<worker_context>(cfg_, log_, board_, 0, -1);
        preforkd::detail::context_access::set_now_ms(*ctx_, now_);
        make_service();
    }

    void TearDown() override {
        session_.reset();
        io_.reset();
        service_.reset();
        std::filesystem::remove_all(base_);
    }

    void make_service() {
        service_ = make_http_service(*ctx_);
        ASSERT_TRUE(service_);
    }

    void write_file(const std::string& rel, const std::string& content) {
        std::ofstream f(root_ / rel, std::ios::binary | std::ios::trunc);
        f << content;
    }

    void connect(const char* peer = "127.0.0.1", const char* tls_version = nullptr) {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        client_.reset(sv[0]);
        session_.reset();  // before its transport
        io_.reset(unique_fd(sv[1]));
        accepted_connection c;
        c.io = &io_;
        c.peer = v4_peer(peer);
        c.peer_len = sizeof(sockaddr_in);
        c.tls_version = tls_version;
        session_ = service_->open(std::move(c));
        ASSERT_TRUE(session_);
        eof_ = false;
    }

    void set_now(int64_t ms) {
        now_ = ms;
        preforkd::detail::context_access::set_now_ms(*ctx_, ms);
    }

    void send(std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = ::send(client_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
            ASSERT_GT(n, 0) << "client send failed";
            bytes.remove_prefix(static_cast<size_t>(n));
        }
    }

    // Reads whatever the client can read now; notes EOF.
    void read_available(std::string& into) {
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(client_.get(), buf, sizeof buf, 0);
            if (n > 0) {
                into.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n == 0) eof_ = true;
            break;
        }
    }

    // One readiness event, as the loop delivers it; a false answer destroys the session.
    // The worker closes the socket right after the session, as the fixture does here.
    void io(uint32_t events = EPOLLIN | EPOLLOUT) {
        if (session_ && !session_->on_io(events)) end_session();
    }
    void deadline() {
        if (session_ && !session_->on_deadline()) end_session();
    }
    void end_session() {
        session_.reset();
        io_.reset();
    }

    // Calls on_io and reads until neither side makes progress.
    std::string pump() {
        std::string got;
        for (int i = 0; i < 10000; ++i) {
            io();
            size_t before = got.size();
            read_available(got);
            if (got.size() == before) break;
        }
        return got;
    }

    std::string exchange(std::string_view request) {
        send(request);
        return pump();
    }

    std::vector<response> get(const std::string& target, const std::string& extra = "") {
        return parse_responses(
            exchange("GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n"));
    }

    bool open() const { return session_ != nullptr; }

    std::filesystem::path base_, root_;
    std::string big_;
    std::shared_ptr<http_settings> settings_;
    config cfg_;
    logger log_{"worker", log_level::crit};
    scoreboard board_;
    std::unique_ptr<worker_context> ctx_;
    std::unique_ptr<service> service_;
    plain_transport io_;  // the worker's: outlives the session
    std::unique_ptr<session> session_;
    unique_fd client_;
    bool eof_ = false;
    int64_t now_ = 1'000'000;
};

}  // namespace preforkd::http::testing
