// Test harness: runs the real preforkd binary on a loopback port with a temporary config
// and docroot, and talks to it with plain sockets. Every wait is bounded.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace preforkd::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A loopback port nobody listens on right now.
uint16_t free_port();

// A TCP socket connected (or, with SOCK_NONBLOCK in `flags`, connecting) to 127.0.0.1:port;
// -1 with errno set when that fails. `rcvbuf` > 0 shrinks the receive buffer first.
int connect_loopback(uint16_t port, int flags = 0, int rcvbuf = 0);

std::string read_file(const fs::path& p);
void write_file(const fs::path& p, const std::string& content);
// `n` bytes from a seeded generator: the same bytes on every run for one seed, none of them
// special (a body the server must pass through untouched).
std::string random_bytes(size_t n, unsigned seed);

// Polls `pred` every 10 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);
// How many times `what` occurs in `log` (an error log: lines that say it).
size_t count_in_log(const std::string& log, const std::string& what);

// A folder under /tmp, removed with everything in it.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

// TOML for a test server: tables of raw TOML values, rendered in order.
class config_builder {
  public:
    // Defaults: listen 127.0.0.1:port, pid/error/access files and docroot `www` in `dir`,
    // 2 workers, quick timeouts.
    config_builder(const fs::path& dir, uint16_t port);
    // `value` is TOML as written: "4", "\"5s\"", "[\"a\", \"b\"]". Empty value removes the key.
    config_builder& set(const std::string& table, const std::string& key, const std::string& value);
    std::string render() const;

  private:
    std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> tables_;
};

struct proc_info {
    pid_t pid = 0;
    pid_t ppid = 0;
    char state = '?';
    uint64_t cpu_ticks = 0;  // utime + stime
};
std::optional<proc_info> read_proc(pid_t pid);
std::vector<pid_t> children_of(pid_t parent);  // live (non-zombie) children
std::vector<pid_t> zombie_children_of(pid_t parent);
int count_fds(pid_t pid);
// The pid a pid file names; 0 when the file is absent or names none.
pid_t read_pid_file(const fs::path& p);
// Waits until the pid file `p` names a pid other than `old` (the new supervisor after a USR2);
// that pid, or 0 after `timeout`.
pid_t wait_new_pid(const fs::path& p, pid_t old, std::chrono::milliseconds timeout);
// True once process `pid` is gone (kill(pid, 0) fails) within `timeout`. For processes that
// are not our children: a child of ours stays, a zombie, until it is reaped.
bool wait_gone(pid_t pid, std::chrono::milliseconds timeout);

// Extra set-up for a started binary.
struct spawn_options {
    std::vector<std::string> env;  // "NAME=value" added to the environment
    int listen_fd = -1;            // passed as fd 3 with LISTEN_FDS=1, LISTEN_PID=<its pid>
    std::string binary;            // default: the binary under test
    // Resource limits (soft = hard) set in the child before exec, e.g. {RLIMIT_NPROC, 8}.
    std::vector<std::pair<int, rlim_t>> rlimits;
    // Run as this user and group (the test runs as root): the limits of RLIMIT_NPROC are
    // not enforced on root. Set after the rlimits, so they may be lowered and raised freely.
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
};

// The preforkd binary under test, started in the foreground (-F) by default.
class server {
  public:
    explicit server(const fs::path& dir, uint16_t port) : dir_(dir), port_(port) {}
    ~server();  // SIGKILLs the supervisor and its workers if still running
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    fs::path config_path() const { return dir_ / "preforkd.toml"; }
    fs::path pid_file() const { return dir_ / "preforkd.pid"; }
    fs::path error_log_path() const { return dir_ / "error.log"; }
    fs::path access_log_path() const { return dir_ / "access.log"; }
    fs::path root() const { return dir_ / "www"; }
    fs::path output_path() const { return dir_ / "output.txt"; }  // stdout + stderr
    uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }

    void write_config(const std::string& toml) const;
    // Starts the binary; true once the pid file names it (that is: ready), within 10 s.
    bool start(const std::vector<std::string>& extra_args = {"-F"}, const spawn_options& so = {});
    // Sends `sig` and waits up to `timeout` for the exit; the exit status, or nullopt.
    std::optional<int> stop(int sig = 15, std::chrono::milliseconds timeout = 10s);
    // Waits for the process to exit by itself.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    void signal(int sig) const;

    std::vector<pid_t> workers() const { return children_of(pid_); }
    bool wait_workers(size_t n, std::chrono::milliseconds timeout = 5s) const;
    std::string error_log() const { return read_file(error_log_path()); }
    std::string output() const { return read_file(output_path()); }

  private:
    fs::path dir_;
    uint16_t port_;
    pid_t pid_ = -1;
    bool reaped_ = false;
    int exit_status_ = -1;  // once reaped
};

// Runs the binary to completion (for -t, -V, -s): exit status and combined output.
struct run_result {
    int status = -1;
    std::string output;
};
run_result run_binary(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 10s,
                      const spawn_options& so = {});

// The socket inode behind /proc/PID/fd/* for each listening socket of PID ("socket:[123]").
std::vector<std::string> socket_links(pid_t pid);

struct http_response {
    int status = 0;
    std::string reason;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
    std::string header(const std::string& name) const;
};

// A client connection. Reads are bounded by `timeout` each.
class http_client {
  public:
    explicit http_client(uint16_t port, std::chrono::milliseconds timeout = 5s);
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    bool send(const std::string& bytes);
    // One response; `head` = the request was HEAD (no body follows). nullopt on close/timeout.
    std::optional<http_response> read_response(bool head = false);
    // True if the server closed the connection (EOF) within `timeout`.
    bool closed_by_peer(std::chrono::milliseconds timeout = 2s);
    std::string read_all();  // until EOF or timeout

  private:
    bool fill();
    int fd_ = -1;
    std::chrono::milliseconds timeout_;
    std::string buf_;
};

// One request on a fresh connection.
std::optional<http_response> http_get(uint16_t port, const std::string& target,
                                      const std::string& extra_headers = "",
                                      const std::string& method = "GET");

}  // namespace preforkd::test
