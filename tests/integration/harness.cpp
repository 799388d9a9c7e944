#include "integration/harness.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace preforkd::test {

namespace {

// Workers write sanitizer reports to their stderr, which is the server's output file here:
// a report there fails the test even if every request succeeded.
void expect_no_sanitizer_report(const std::string& output, const std::string& who) {
    for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                               "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer"}) {
        auto at = output.find(marker);
        if (at != std::string::npos) {
            ADD_FAILURE() << who << " reported: " << output.substr(at > 200 ? at - 200 : 0, 3000);
            return;
        }
    }
}

}  // namespace

uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    socklen_t len = sizeof(sin);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    ::close(fd);
    return ntohs(sin.sin_port);
}

int connect_loopback(uint16_t port, int flags, int rcvbuf) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 &&
        !((flags & SOCK_NONBLOCK) && errno == EINPROGRESS)) {
        int err = errno;
        ::close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& p, const std::string& content) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
}

std::string random_bytes(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

size_t count_in_log(const std::string& log, const std::string& what) {
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(10ms);
    }
}

temp_dir::temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "preforkd-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
    // Workers may run as nobody: they reopen logs here on USR1.
    ::chmod(path_.c_str(), 0755);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

config_builder::config_builder(const fs::path& dir, uint16_t port) {
    auto q = [](const fs::path& p) { return "\"" + p.string() + "\""; };
    set("server", "listen", "[\"127.0.0.1:" + std::to_string(port) + "\"]");
    set("server", "pid_file", q(dir / "preforkd.pid"));
    set("workers", "start", "2");
    set("workers", "graceful_timeout", "\"5s\"");
    set("http", "root", q(dir / "www"));
    set("log", "error", q(dir / "error.log"));
    set("log", "access", q(dir / "access.log"));
    set("log", "level", "\"debug\"");
}

config_builder& config_builder::set(const std::string& table, const std::string& key,
                                    const std::string& value) {
    auto t =
        std::find_if(tables_.begin(), tables_.end(), [&](auto& e) { return e.first == table; });
    if (t == tables_.end()) {
        tables_.push_back({table, {}});
        t = tables_.end() - 1;
    }
    auto& kv = t->second;
    auto k = std::find_if(kv.begin(), kv.end(), [&](auto& e) { return e.first == key; });
    if (value.empty()) {
        if (k != kv.end()) kv.erase(k);
    } else if (k == kv.end()) {
        kv.push_back({key, value});
    } else {
        k->second = value;
    }
    return *this;
}

std::string config_builder::render() const {
    std::string out;
    for (const auto& [table, kv] : tables_) {
        out += "[" + table + "]\n";
        for (const auto& [k, v] : kv) out += k + " = " + v + "\n";
        out += "\n";
    }
    return out;
}

std::optional<proc_info> read_proc(pid_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close_paren = stat.rfind(')');
    if (stat.empty() || close_paren == std::string::npos) return std::nullopt;
    std::istringstream in(stat.substr(close_paren + 2));
    proc_info p;
    p.pid = pid;
    std::string field;
    in >> p.state >> p.ppid;
    // Fields 5..13 of stat (pgrp .. majflt-ish), then utime (14) and stime (15).
    for (int i = 0; i < 9; ++i) in >> field;
    uint64_t ut = 0, st = 0;
    in >> ut >> st;
    p.cpu_ticks = ut + st;
    return p;
}

namespace {

std::vector<proc_info> all_children(pid_t parent) {
    std::vector<proc_info> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        auto p = read_proc(static_cast<pid_t>(pid));
        if (p && p->ppid == parent) out.push_back(*p);
    }
    ::closedir(d);
    return out;
}

}  // namespace

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    for (const auto& p : all_children(parent))
        if (p.state != 'Z' && p.state != 'X') out.push_back(p.pid);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<pid_t> zombie_children_of(pid_t parent) {
    std::vector<pid_t> out;
    for (const auto& p : all_children(parent))
        if (p.state == 'Z') out.push_back(p.pid);
    return out;
}

pid_t read_pid_file(const fs::path& p) {
    return static_cast<pid_t>(std::atoi(read_file(p).c_str()));
}

pid_t wait_new_pid(const fs::path& p, pid_t old, std::chrono::milliseconds timeout) {
    pid_t pid = 0;
    bool changed = wait_until(
        [&] {
            pid = read_pid_file(p);
            return pid > 0 && pid != old;
        },
        timeout);
    return changed ? pid : 0;
}

bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
    return wait_until([&] { return ::kill(pid, 0) != 0; }, timeout);
}

std::vector<std::string> socket_links(pid_t pid) {
    std::vector<std::string> out;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        auto target = fs::read_symlink(e.path(), ec);
        if (!ec && target.string().rfind("socket:", 0) == 0) out.push_back(target.string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

int count_fds(pid_t pid) {
    int n = 0;
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

namespace {

pid_t spawn_binary(const std::vector<std::string>& args, const fs::path& output,
                   const spawn_options& so = {}) {
    std::vector<std::string> argv_s{so.binary.empty() ? std::string(PREFORKD_BINARY) : so.binary};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_t pid = ::fork();
    if (pid == 0) {
        int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (out >= 0) {
            ::dup2(out, 1);
            ::dup2(out, 2);
        }
        // The test runner may block signals (gtest threads): the binary starts clean.
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (const auto& e : so.env) ::putenv(const_cast<char*>(e.c_str()));
        if (so.listen_fd >= 0) {
            // The systemd convention: fds from 3, LISTEN_PID names the receiving process.
            if (so.listen_fd != 3) {
                ::dup2(so.listen_fd, 3);
                ::close(so.listen_fd);
            }
            ::fcntl(3, F_SETFD, 0);
            std::string me = std::to_string(::getpid());
            ::setenv("LISTEN_FDS", "1", 1);
            ::setenv("LISTEN_PID", me.c_str(), 1);
        }
        for (const auto& [resource, limit] : so.rlimits) {
            rlimit rl{limit, limit};
            // glibc types the resource as an enum in C++ (_GNU_SOURCE).
            if (::setrlimit(static_cast<__rlimit_resource_t>(resource), &rl) != 0) ::_exit(126);
        }
        if (so.gid) {
            if (::setgroups(1, &*so.gid) != 0 || ::setgid(*so.gid) != 0) ::_exit(126);
        }
        if (so.uid && ::setuid(*so.uid) != 0) ::_exit(126);
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout) {
    int status = 0;
    std::optional<int> result;
    wait_until(
        [&] {
            pid_t r = ::waitpid(pid, &status, WNOHANG);
            if (r == pid) {
                result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                return true;
            }
            return r < 0;
        },
        timeout);
    return result;
}

}  // namespace

run_result run_binary(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                      const spawn_options& so) {
    temp_dir tmp;
    fs::path out = tmp.path() / "out.txt";
    pid_t pid = spawn_binary(args, out, so);
    run_result r;
    auto status = wait_pid(pid, timeout);
    if (!status) {
        ::kill(pid, SIGKILL);
        wait_pid(pid, 2s);
    }
    r.status = status.value_or(-1);
    r.output = read_file(out);
    expect_no_sanitizer_report(r.output, "the binary");
    return r;
}

server::~server() {
    expect_no_sanitizer_report(output(), "the server");
    if (pid_ > 0 && !reaped_) {
        auto kids = workers();
        ::kill(pid_, SIGKILL);
        for (pid_t k : kids) ::kill(k, SIGKILL);
        wait_pid(pid_, 5s);
    }
}

void server::write_config(const std::string& toml) const {
    write_file(config_path(), toml);
    fs::create_directories(root());
}

bool server::start(const std::vector<std::string>& extra_args, const spawn_options& so) {
    std::vector<std::string> args{"-c", config_path().string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = spawn_binary(args, output_path(), so);
    reaped_ = false;
    return wait_until(
               [&] {
                   std::string pid = read_file(pid_file());
                   if (!pid.empty() && std::atoi(pid.c_str()) == pid_) return true;
                   int status = 0;
                   if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                       reaped_ = true;
                       exit_status_ =
                           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                       return true;
                   }
                   return false;
               },
               10s) &&
           !reaped_;
}

std::optional<int> server::stop(int sig, std::chrono::milliseconds timeout) {
    if (pid_ <= 0 || reaped_) return std::nullopt;
    ::kill(pid_, sig);
    return wait_exit(timeout);
}

std::optional<int> server::wait_exit(std::chrono::milliseconds timeout) {
    if (reaped_) return exit_status_;
    auto r = wait_pid(pid_, timeout);
    if (r) reaped_ = true;
    return r;
}

void server::signal(int sig) const { ::kill(pid_, sig); }

bool server::wait_workers(size_t n, std::chrono::milliseconds timeout) const {
    return wait_until([&] { return workers().size() == n; }, timeout);
}

std::string http_response::header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

http_client::http_client(uint16_t port, std::chrono::milliseconds timeout) : timeout_(timeout) {
    fd_ = connect_loopback(port);
    if (fd_ < 0) return;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

http_client::~http_client() {
    if (fd_ >= 0) ::close(fd_);
}

bool http_client::send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

bool http_client::fill() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout_.count())) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
}

std::optional<http_response> http_client::read_response(bool head) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
        if (!fill()) return std::nullopt;
    std::string head_text = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    http_response r;
    std::istringstream in(head_text);
    std::string line;
    std::getline(in, line);
    if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
    r.status = std::atoi(line.c_str() + 9);
    r.reason = line.size() > 13 ? line.substr(13) : "";
    if (!r.reason.empty() && r.reason.back() == '\r') r.reason.pop_back();
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        r.headers[name] = value;
    }
    bool no_body = head || r.status == 304 || r.status == 204 || r.status / 100 == 1;
    if (!no_body) {
        auto cl = r.headers.find("content-length");
        if (cl != r.headers.end()) {
            size_t len = std::strtoull(cl->second.c_str(), nullptr, 10);
            while (buf_.size() < len)
                if (!fill()) return std::nullopt;
            r.body = buf_.substr(0, len);
            buf_.erase(0, len);
        } else {
            while (fill()) {
            }
            r.body = std::move(buf_);
            buf_.clear();
        }
    }
    return r;
}

bool http_client::closed_by_peer(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char tmp[4096];
        ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
        if (n > 0) buf_.append(tmp, static_cast<size_t>(n));
    }
    return false;
}

std::string http_client::read_all() {
    while (fill()) {
    }
    return std::exchange(buf_, std::string());
}

std::optional<http_response> http_get(uint16_t port, const std::string& target,
                                      const std::string& extra_headers, const std::string& method) {
    http_client c(port);
    if (!c.connected()) return std::nullopt;
    if (!c.send(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers +
                "Connection: close\r\n\r\n"))
        return std::nullopt;
    return c.read_response(method == "HEAD");
}

}  // namespace preforkd::test
