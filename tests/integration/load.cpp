#include "integration/load.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "integration/harness.hpp"

namespace preforkd::test {
namespace {

int connect_to(uint16_t port) {
    int fd = connect_loopback(port);
    if (fd < 0) return -1;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

bool send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

struct response {
    int status = 0;
    bool close = false;
    std::string body;
};

// Reads one response from `buf` + the socket. Returns an empty string on success, else why not.
std::string read_response(int fd, std::string& buf, response& r,
                          std::chrono::milliseconds timeout) {
    auto fill = [&]() -> std::string {
        pollfd p{fd, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (n == 0) return "timeout";
        char tmp[65536];
        ssize_t got = ::recv(fd, tmp, sizeof(tmp), 0);
        if (got == 0) return "closed";
        if (got < 0) return std::string("recv: ") + std::strerror(errno);
        buf.append(tmp, static_cast<size_t>(got));
        return "";
    };
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
        if (auto e = fill(); !e.empty())
            return e + (buf.empty() ? " before any byte" : " mid-head");
    std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    if (head.compare(0, 9, "HTTP/1.1 ") != 0) return "bad status line";
    r.status = std::atoi(head.c_str() + 9);
    size_t len = 0;
    size_t pos = 0;
    std::string lower = head;
    for (auto& c : lower) c = static_cast<char>(::tolower(static_cast<unsigned char>(c)));
    if ((pos = lower.find("\r\ncontent-length:")) != std::string::npos)
        len = std::strtoull(lower.c_str() + pos + 17, nullptr, 10);
    r.close = lower.find("\r\nconnection: close") != std::string::npos;
    while (buf.size() < len)
        if (auto e = fill(); !e.empty()) return e + " mid-body";
    r.body = buf.substr(0, len);
    buf.erase(0, len);
    return "";
}

}  // namespace

load_generator::load_generator(load_options o) : o_(std::move(o)) {}

load_generator::~load_generator() {
    stop_ = true;
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

void load_generator::start() {
    for (int i = 0; i < o_.threads; ++i) threads_.emplace_back([this] { run_thread(); });
}

load_result load_generator::wait() {
    std::this_thread::sleep_for(o_.duration);
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    load_result r;
    r.requests = ok_;
    r.failed = failed_;
    r.reconnects = reconnects_;
    std::lock_guard<std::mutex> g(m_);
    r.samples = samples_;
    return r;
}

void load_generator::fail(const std::string& what) {
    ++failed_;
    std::lock_guard<std::mutex> g(m_);
    if (samples_.size() < 10) samples_.push_back(what);
}

void load_generator::run_thread() {
    const std::string req = "GET " + o_.target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                            (o_.keep_alive ? "" : "Connection: close\r\n") + "\r\n";
    int fd = -1;
    std::string buf;
    while (!stop_) {
        if (fd < 0) {
            fd = connect_to(o_.port);
            buf.clear();
            if (fd < 0) {
                fail(std::string("connect: ") + std::strerror(errno));
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
                continue;
            }
        }
        if (!send_all(fd, req)) {
            fail(std::string("send: ") + std::strerror(errno));
            ::close(fd);
            fd = -1;
            continue;
        }
        response r;
        std::string e = read_response(fd, buf, r, o_.io_timeout);
        if (!e.empty()) {
            fail("response: " + e);
            ::close(fd);
            fd = -1;
            continue;
        }
        if (r.status != 200 || r.body != o_.expected_body) {
            fail("status " + std::to_string(r.status) + ", " + std::to_string(r.body.size()) +
                 " body bytes");
        } else {
            ++ok_;
        }
        if (!o_.keep_alive || r.close) {
            if (o_.keep_alive) ++reconnects_;
            ::close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) ::close(fd);
}

}  // namespace preforkd::test
