// Reliability under faults and load: workers killed under load, signal storms, descriptor
// and process exhaustion, misbehaving clients, leaks and memory growth. Each scenario
// prints its figures ("[figures] ...") and fails when they are off.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>

#include "integration/chaos.hpp"
#include "integration/fixture.hpp"
#include "integration/load.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PREFORKD_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(PREFORKD_TEST_ASAN)
#define PREFORKD_TEST_ASAN 1
#endif

namespace preforkd::test {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// On failure, the end of the server's error log goes with the report.
class chaos : public server_test {
protected:
    void TearDown() override {
        if (HasFailure() && srv_) {
            std::string log = srv_->error_log();
            std::printf("---- error log (last 6000 bytes)\n%s\n----\n",
                        log.substr(log.size() > 6000 ? log.size() - 6000 : 0).c_str());
        }
    }
};

int64_t ms_since(clock_type::time_point t) {
    return duration_cast<milliseconds>(clock_type::now() - t).count();
}

const std::string page(4096, 'p');

// Lines of the error log containing `what`.
[[maybe_unused]] size_t count_in_log(const std::string& log, const std::string& what) {
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
}

// ---- 1. workers killed under load -----------------------------------------------------------

// Every 200 ms a random worker gets SIGKILL while two connection-per-request clients run for
// 10 s. What a kill may cost is the connections the victim held: those it accepted and had
// not finished (a client whose connection was accepted by a worker that dies sees a reset
// or an early EOF); connections still in the shared listen queue are taken by the others.
// To count them without a race, the victim is first stopped (SIGSTOP: it can accept nothing
// more), its sockets are read from /proc/PID/fd and matched in /proc/net/tcp to client
// ports, and only then is it killed. Every failed request must be one of those connections.
TEST_F(chaos, random_worker_kills_under_load_lose_only_the_victims_connections) {
    constexpr int pool = 4;
    write_file(dir_.path() / "www/index.html", page);
    cfg_.set("workers", "start", std::to_string(pool));
    cfg_.set("workers", "max", std::to_string(pool));
    start();
    ASSERT_TRUE(srv_->wait_workers(pool));
    const pid_t sup = srv_->pid();

    zombie_watch zombies(sup);
    std::mt19937 rng(20261125);
    std::set<uint16_t> victim_ports;
    size_t victim_connections = 0, kills = 0;
    size_t smallest_pool = pool;
    std::set<pid_t> victims;
    pid_t last_victim = 0;
    clock_type::time_point last_kill;

    const auto t0 = clock_type::now();
    tracked_load load(port_, "/index.html", page, 2);
    for (int i = 1; clock_type::now() - t0 < 9800ms; ++i) {
        std::this_thread::sleep_until(t0 + i * 200ms);
        auto live = srv_->workers();
        smallest_pool = std::min(smallest_pool, live.size());
        std::erase_if(live, [&](pid_t p) { return victims.count(p) != 0; });
        if (live.empty()) continue;
        pid_t victim = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)];
        ::kill(victim, SIGSTOP);
        ASSERT_TRUE(wait_stopped(victim, 3s)) << "worker " << victim << " did not stop";
        auto ports = peer_ports_of_connections(victim, sup);
        if (std::getenv("CHAOS_DEBUG")) {
            std::printf("kill %d at %lld ms:", victim, (long long)ms_since(t0));
            for (auto p : ports) std::printf(" %u", p);
            std::printf("\n");
        }
        victim_connections += ports.size();
        victim_ports.insert(ports.begin(), ports.end());
        ::kill(victim, SIGKILL);
        last_kill = clock_type::now();
        last_victim = victim;
        victims.insert(victim);
        ++kills;
    }

    // Back at its size: as many live workers as before, none of them a victim.
    ASSERT_TRUE(wait_until(
        [&] {
            auto p = read_proc(last_victim);
            return !p || p->state == 'Z' || p->state == 'X';
        },
        3s));
    bool back = wait_until(
        [&] {
            auto live = srv_->workers();
            return live.size() == pool && std::none_of(live.begin(), live.end(), [&](pid_t p) {
                       return victims.count(p) != 0;
                   });
        },
        5s);
    int64_t recovered_ms = ms_since(last_kill);
    // ... and every one of them up (idle or busy on the scoreboard).
    bool serving = wait_until(
        [&] {
            auto s = read_status(port_);
            return s && s->workers.size() == pool &&
                   std::all_of(s->workers.begin(), s->workers.end(), [](const status_worker& w) {
                       return w.state == "idle" || w.state == "busy";
                   });
        },
        5s);
    int64_t serving_ms = ms_since(last_kill);
    while (clock_type::now() - t0 < 10s) std::this_thread::sleep_for(10ms);
    load.stop();
    auto failures = load.failures();
    // Every zombie has been reaped by now.
    EXPECT_TRUE(wait_until([&] { return zombie_children_of(sup).empty(); }, 1s));
    zombies.stop();

    size_t unmatched = 0;
    for (const auto& f : failures)
        if (victim_ports.count(f.port) == 0) ++unmatched;
    std::printf(
        "[figures] worker kills: %zu SIGKILLs in 10 s, %llu requests ok, %zu failed, %zu "
        "connections held by the victims, %zu failures not on a victim's connection\n",
        kills, static_cast<unsigned long long>(load.ok()), failures.size(), victim_connections,
        unmatched);
    std::printf(
        "[figures] worker kills: pool back at %d live workers %lld ms after the last kill, all "
        "serving after %lld ms; smallest pool seen %zu; %zu zombies seen, longest unreaped %lld "
        "ms\n",
        pool, static_cast<long long>(recovered_ms), static_cast<long long>(serving_ms),
        smallest_pool, zombies.seen(), static_cast<long long>(zombies.longest().count()));
    for (size_t i = 0; i < failures.size() && i < 5; ++i)
        std::printf("[figures]   failure on port %u: %s\n", failures[i].port,
                    failures[i].what.c_str());
    if (std::getenv("CHAOS_DEBUG"))
        for (const auto& f : failures)
            std::printf("failure at %lld ms port %u: %s\n",
                        (long long)duration_cast<milliseconds>(f.at - t0).count(), f.port,
                        f.what.c_str());

    EXPECT_GE(kills, 45u);
    EXPECT_GT(load.ok(), 200u);
    EXPECT_LE(failures.size(), victim_connections);
    EXPECT_EQ(unmatched, 0u) << "a request failed on a connection no killed worker held";
    EXPECT_TRUE(back);
    EXPECT_TRUE(serving);
    EXPECT_LE(recovered_ms, 1000);
    EXPECT_LE(serving_ms, 1000);
    EXPECT_LT(zombies.longest(), 1000ms) << "a dead worker stayed unreaped";
}

}  // namespace
}  // namespace preforkd::test
