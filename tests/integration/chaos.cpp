#include "integration/chaos.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "integration/harness.hpp"

namespace preforkd::test {

std::string request_once(uint16_t port, const std::string& target, const std::string& expected,
                         std::chrono::milliseconds timeout, uint16_t* local_port) {
    int fd = connect_loopback(port);
    if (fd < 0) return std::string("connect: ") + std::strerror(errno);
    sockaddr_in me{};
    socklen_t len = sizeof(me);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len);
    if (local_port) *local_port = ntohs(me.sin_port);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        std::string e = std::string("send: ") + std::strerror(errno);
        ::close(fd);
        return e;
    }
    // Connection: close, so the response ends at EOF; its length is checked below.
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string error;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            error = "timeout";
            break;
        }
        char buf[65536];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = std::string("recv: ") + std::strerror(errno);
            break;
        }
        if (n == 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    if (!error.empty()) return error + " after " + std::to_string(got.size()) + " bytes";
    auto head_end = got.find("\r\n\r\n");
    if (head_end == std::string::npos)
        return "closed after " + std::to_string(got.size()) + " bytes, no whole head";
    if (got.compare(0, 12, "HTTP/1.1 200") != 0) return "status line " + got.substr(0, 12);
    if (got.compare(head_end + 4, std::string::npos, expected) != 0)
        return "body of " + std::to_string(got.size() - head_end - 4) + " bytes differs";
    return "";
}

tracked_load::tracked_load(uint16_t port, std::string target, std::string expected, int threads)
    : port_(port), target_(std::move(target)), expected_(std::move(expected)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

tracked_load::~tracked_load() { stop(); }

void tracked_load::stop() {
    stop_ = true;
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

std::vector<tracked_load::failure> tracked_load::failures() const {
    std::lock_guard<std::mutex> g(m_);
    return failures_;
}

void tracked_load::run() {
    while (!stop_) {
        uint16_t local = 0;
        std::string e = request_once(port_, target_, expected_, std::chrono::seconds(5), &local);
        if (e.empty()) {
            ++ok_;
            continue;
        }
        std::lock_guard<std::mutex> g(m_);
        failures_.push_back({local, e, std::chrono::steady_clock::now()});
    }
}

zombie_watch::zombie_watch(pid_t parent) : parent_(parent) {
    t_ = std::thread([this] {
        while (!stop_) {
            auto now = std::chrono::steady_clock::now();
            auto z = zombie_children_of(parent_);
            {
                std::lock_guard<std::mutex> g(m_);
                for (pid_t p : z) {
                    auto [it, fresh] = zombies_.try_emplace(p, now, now);
                    if (!fresh) it->second.second = now;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    });
}

zombie_watch::~zombie_watch() { stop(); }

void zombie_watch::stop() {
    stop_ = true;
    if (t_.joinable()) t_.join();
}

size_t zombie_watch::seen() const {
    std::lock_guard<std::mutex> g(m_);
    return zombies_.size();
}

std::chrono::milliseconds zombie_watch::longest() const {
    std::lock_guard<std::mutex> g(m_);
    std::chrono::milliseconds m{0};
    for (const auto& [pid, seen] : zombies_)
        m = std::max(
            m, std::chrono::duration_cast<std::chrono::milliseconds>(seen.second - seen.first));
    return m;
}

std::optional<server_status> read_status(uint16_t port) {
    auto r = http_get(port, "/server-status");
    if (!r || r->status != 200) return std::nullopt;
    server_status s;
    std::istringstream in(r->body);
    std::string line;
    while (std::getline(in, line)) {
        unsigned gen = 0;
        if (std::sscanf(line.c_str(), "Generation: %u", &gen) == 1) s.generation = gen;
        int slot = 0, pid = 0;
        unsigned wgen = 0, conns = 0;
        char state[32] = {};
        if (std::sscanf(line.c_str(),
                        "Worker: slot=%d pid=%d generation=%u state=%31s connections=%u", &slot,
                        &pid, &wgen, state, &conns) == 5)
            s.workers.push_back({pid, wgen, state, conns});
    }
    return s;
}

namespace {

// inode -> remote port of the TCP sockets in this network namespace, TIME_WAIT and LISTEN
// left out. Asked of the kernel with sock_diag: /proc/net/tcp lists every TIME_WAIT socket
// of a connection-per-request load too, and reading it then takes most of a second.
std::map<std::string, uint16_t> tcp_remote_ports() {
    std::map<std::string, uint16_t> out;
    for (uint8_t family : {uint8_t{AF_INET}, uint8_t{AF_INET6}}) {
        int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0) return out;
        struct {
            nlmsghdr nlh;
            inet_diag_req_v2 r;
        } req{};
        req.nlh.nlmsg_len = sizeof(req);
        req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
        req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        req.r.sdiag_family = family;
        req.r.sdiag_protocol = IPPROTO_TCP;
        req.r.idiag_states = 0xfff & ~((1u << TCP_TIME_WAIT) | (1u << TCP_LISTEN));
        if (::send(fd, &req, sizeof(req), 0) != static_cast<ssize_t>(sizeof(req))) {
            ::close(fd);
            return out;
        }
        alignas(nlmsghdr) char buf[65536];
        bool done = false;
        while (!done) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 2000) <= 0) break;
            ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
            if (n <= 0) break;
            auto len = static_cast<unsigned>(n);
            for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len);
                 h = NLMSG_NEXT(h, len)) {
                if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                    done = true;
                    break;
                }
                auto* m = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
                out["socket:[" + std::to_string(m->idiag_inode) + "]"] = ntohs(m->id.idiag_dport);
            }
        }
        ::close(fd);
    }
    return out;
}

}  // namespace

std::vector<uint16_t> peer_ports_of_connections(pid_t pid, pid_t other) {
    auto mine = socket_links(pid);
    auto theirs = socket_links(other);
    std::set<std::string> shared(theirs.begin(), theirs.end());
    auto ports = tcp_remote_ports();
    std::vector<uint16_t> out;
    for (const auto& s : mine) {
        if (shared.count(s)) continue;
        auto it = ports.find(s);
        out.push_back(it == ports.end() ? 0 : it->second);
    }
    return out;
}

long vm_rss_kib(pid_t pid) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

bool wait_stopped(pid_t pid, std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
            auto p = read_proc(pid);
            return !p || p->state == 'T' || p->state == 't' || p->state == 'Z';
        },
        timeout);
}

void raise_nofile(rlim_t n) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= n) return;
    rl.rlim_cur = std::min(n, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &rl);
}

}  // namespace preforkd::test
