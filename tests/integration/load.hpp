// A bounded load generator for the integration tests: threads of clients on loopback, each
// response checked byte for byte. It counts what a user would call a failed request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace preforkd::test {

struct load_options {
    uint16_t port = 0;
    std::string target = "/index.html";
    std::string expected_body;  // every 200 response must carry exactly this
    int threads = 2;
    // false: a new connection per request (Connection: close).
    // true: one persistent connection per thread; a request is never retried. The server may
    // close an idle connection only after a response that said `Connection: close`.
    bool keep_alive = false;
    std::chrono::milliseconds duration{2000};
    std::chrono::milliseconds io_timeout{5000};
};

struct load_result {
    uint64_t requests = 0;  // completed with the expected bytes
    uint64_t failed = 0;
    uint64_t reconnects = 0;           // keep-alive: new connections after a `Connection: close`
    std::vector<std::string> samples;  // the first few failures, described
};

class load_generator {
  public:
    explicit load_generator(load_options o);
    ~load_generator();
    void start();
    load_result wait();  // joins after the duration
    uint64_t requests_so_far() const { return ok_.load(); }

  private:
    void run_thread();
    void fail(const std::string& what);
    load_options o_;
    std::vector<std::thread> threads_;
    std::atomic<uint64_t> ok_{0}, failed_{0}, reconnects_{0};
    std::atomic<bool> stop_{false};
    std::mutex m_;
    std::vector<std::string> samples_;
};

}  // namespace preforkd::test
