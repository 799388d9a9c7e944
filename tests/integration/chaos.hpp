// Tools of the chaos suite (chaos_test.cpp): a client that remembers which connection
// failed, a zombie watcher, the status page's worker lines, and what /proc says about
// the TCP connections a process holds.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace preforkd::test {

// One GET on a fresh connection (Connection: close), the body checked byte for byte.
// Returns "" on success, else what went wrong; `local_port` gets the client's port.
std::string request_once(uint16_t port, const std::string& target, const std::string& expected,
                         std::chrono::milliseconds timeout, uint16_t* local_port = nullptr);

// Connection-per-request clients that keep the client port and the time of each failure,
// so failures can be matched with the connections a killed worker held.
class tracked_load {
  public:
    struct failure {
        uint16_t port = 0;
        std::string what;
        std::chrono::steady_clock::time_point at;
    };
    tracked_load(uint16_t port, std::string target, std::string expected, int threads);
    ~tracked_load();  // stops and joins
    void stop();
    uint64_t ok() const { return ok_.load(); }
    std::vector<failure> failures() const;

  private:
    void run();
    uint16_t port_;
    std::string target_, expected_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> ok_{0};
    mutable std::mutex m_;
    std::vector<failure> failures_;
    std::vector<std::thread> threads_;
};

// Samples the zombie children of `parent` every few milliseconds and remembers how long
// the longest-lived one stayed unreaped.
class zombie_watch {
  public:
    explicit zombie_watch(pid_t parent);
    ~zombie_watch();  // stops
    void stop();
    size_t seen() const;  // distinct zombies observed
    std::chrono::milliseconds longest() const;

  private:
    pid_t parent_;
    std::atomic<bool> stop_{false};
    mutable std::mutex m_;
    std::map<pid_t, std::pair<std::chrono::steady_clock::time_point,
                              std::chrono::steady_clock::time_point>>
        zombies_;  // first and last seen
    std::thread t_;
};

// The "Worker:" lines of the text status page.
struct status_worker {
    pid_t pid = 0;
    uint32_t generation = 0;
    std::string state;
    uint32_t connections = 0;
};
struct server_status {
    uint32_t generation = 0;
    std::vector<status_worker> workers;
};
std::optional<server_status> read_status(uint16_t port);

// Client ports of the TCP connections that `pid` holds and `other` does not (the workers
// share the supervisor's listening sockets, so those drop out): /proc/PID/fd inodes looked
// up with sock_diag. Connections whose inode is not found count with port 0.
std::vector<uint16_t> peer_ports_of_connections(pid_t pid, pid_t other);

// Resident memory of `pid` in KiB (VmRSS), or -1.
long vm_rss_kib(pid_t pid);

// Waits until `pid` is stopped (state T) or gone; false on timeout.
bool wait_stopped(pid_t pid, std::chrono::milliseconds timeout);

// Raises this process's soft RLIMIT_NOFILE to at least `n` (up to the hard limit).
void raise_nofile(rlim_t n);

}  // namespace preforkd::test
