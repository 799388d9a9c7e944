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

#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

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
size_t count_in_log(const std::string& log, const std::string& what) {
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

// ---- 2. signal storm -------------------------------------------------------------------------

void report(const char* scenario, const load_result& r) {
    std::printf("[figures] %s: %llu requests ok, %llu failed, %llu reconnects\n", scenario,
                static_cast<unsigned long long>(r.requests),
                static_cast<unsigned long long>(r.failed),
                static_cast<unsigned long long>(r.reconnects));
    for (const auto& s : r.samples) std::printf("[figures]   failure: %s\n", s.c_str());
}

// 100 HUP, 50 TTIN, 50 TTOU and 20 USR1 in a shuffled order, spread over 5 s, while
// connection-per-request and keep-alive clients run. Signals of one kind that arrive
// together coalesce (the kernel keeps one pending), and reloads that come while one is
// under way are queued into one: the figures say how many of each the supervisor saw.
TEST_F(chaos, signal_storm_under_load_loses_no_request_and_leaks_nothing) {
    constexpr int max_workers = 8;
    write_file(dir_.path() / "www/index.html", page);
    cfg_.set("workers", "start", "3");
    cfg_.set("workers", "max", std::to_string(max_workers));
    cfg_.set("workers", "graceful_timeout", "\"3s\"");
    cfg_.set("http", "max_keepalive_requests", "100000000");
    start();
    ASSERT_TRUE(srv_->wait_workers(3));
    const pid_t sup = srv_->pid();
    const int fds_before = count_fds(sup);
    const auto links_before = socket_links(sup);

    std::vector<int> storm;
    storm.insert(storm.end(), 100, SIGHUP);
    storm.insert(storm.end(), 50, SIGTTIN);
    storm.insert(storm.end(), 50, SIGTTOU);
    storm.insert(storm.end(), 20, SIGUSR1);
    std::mt19937 rng(4242);
    std::shuffle(storm.begin(), storm.end(), rng);

    zombie_watch zombies(sup);
    // wait() lets a load run for its duration from the call on: one more second after the
    // storm for the first, then the second stops at once.
    load_generator per_request({.port = port_, .expected_body = page, .threads = 2,
                                .keep_alive = false, .duration = 1000ms});
    load_generator keep_alive({.port = port_, .expected_body = page, .threads = 2,
                               .keep_alive = true, .duration = 0ms});
    per_request.start();
    keep_alive.start();
    std::this_thread::sleep_for(500ms);
    const auto t0 = clock_type::now();
    for (size_t i = 0; i < storm.size(); ++i) {
        std::this_thread::sleep_until(t0 + i * 5000ms / storm.size());
        srv_->signal(storm[i]);
    }
    const int64_t storm_ms = ms_since(t0);
    auto r1 = per_request.wait();
    auto r2 = keep_alive.wait();
    EXPECT_EQ(::kill(sup, 0), 0) << "the supervisor is gone";

    // Settled: one generation, nobody retiring, the supervisor's descriptors as before.
    std::optional<server_status> st;
    const auto settle0 = clock_type::now();
    bool settled = wait_until(
        [&] {
            st = read_status(port_);
            return st && !st->workers.empty() &&
                   std::all_of(st->workers.begin(), st->workers.end(),
                               [&](const status_worker& w) {
                                   return w.generation == st->generation && w.state != "retiring";
                               }) &&
                   srv_->workers().size() == st->workers.size() && count_fds(sup) == fds_before;
        },
        20s);
    const int64_t settle_ms = ms_since(settle0);
    zombies.stop();
    const int fds_after = count_fds(sup);
    const size_t pool = srv_->workers().size();
    const std::string log = srv_->error_log();

    report("signal storm, connection per request", r1);
    report("signal storm, keep-alive", r2);
    std::printf(
        "[figures] signal storm: %zu signals sent in %lld ms; supervisor saw %zu HUP, %zu TTIN, "
        "%zu TTOU, %zu USR1; generation %u at the end; settled %lld ms after the storm with %zu "
        "workers; supervisor fds %d before, %d after; %zu zombies seen, longest unreaped %lld ms\n",
        storm.size(), static_cast<long long>(storm_ms), count_in_log(log, "received HUP"),
        count_in_log(log, "received TTIN"), count_in_log(log, "received TTOU"),
        count_in_log(log, "received USR1"), st ? st->generation : 0u,
        static_cast<long long>(settle_ms), pool, fds_before, fds_after, zombies.seen(),
        static_cast<long long>(zombies.longest().count()));

    EXPECT_EQ(r1.failed, 0u);
    EXPECT_EQ(r2.failed, 0u);
    EXPECT_GT(r1.requests, 100u);
    EXPECT_GT(r2.requests, 100u);
    EXPECT_TRUE(settled) << "the pool did not settle on one generation";
    EXPECT_EQ(fds_after, fds_before) << "the supervisor leaks descriptors";
    EXPECT_EQ(socket_links(sup), links_before) << "the listening sockets changed";
    EXPECT_GE(pool, 1u);
    EXPECT_LE(pool, static_cast<size_t>(max_workers));
    EXPECT_GT(st ? st->generation : 0u, 1u) << "no reload happened";
    EXPECT_TRUE(zombie_children_of(sup).empty());
    EXPECT_LT(zombies.longest(), 1000ms) << "a dead worker stayed unreaped";
    auto r = http_get(port_, "/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

// ---- 3. descriptor exhaustion ---------------------------------------------------------------

// Connections that hold a descriptor each and send nothing.
class idle_connections {
public:
    void open(uint16_t port, int n) {
        for (int i = 0; i < n; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            sin.sin_port = htons(port);
            ::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));  // EINPROGRESS
            fds_.push_back(fd);
        }
    }
    void close_all() {
        for (int fd : fds_) ::close(fd);
        fds_.clear();
    }
    ~idle_connections() { close_all(); }
    const std::vector<int>& fds() const { return fds_; }

private:
    std::vector<int> fds_;
};

double cpu_seconds(pid_t pid) {
    auto p = read_proc(pid);
    return p ? static_cast<double>(p->cpu_ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK))
             : 0.0;
}

// One worker limited to 32 descriptors (workers.rlimit_nofile) gets 100 connections that send
// nothing. Out of descriptors, accept4 fails with EMFILE while the connection stays queued:
// a worker that tried again at once would spin on the readable listener. It must pause
// (idle CPU), log once, and serve again as soon as descriptors come free.
TEST_F(chaos, a_worker_out_of_descriptors_pauses_logs_once_and_recovers) {
    constexpr int limit = 32;
    cfg_.set("workers", "start", "1");
    cfg_.set("workers", "max", "1");
    cfg_.set("workers", "min_spare", "0");
    cfg_.set("workers", "max_spare", "1");
    cfg_.set("workers", "rlimit_nofile", std::to_string(limit));
    cfg_.set("http", "header_timeout", "\"60s\"");
    start();
    ASSERT_TRUE(srv_->wait_workers(1));
    const pid_t worker = srv_->workers()[0];
    const std::string limits = read_file("/proc/" + std::to_string(worker) + "/limits");
    EXPECT_NE(limits.find("Max open files            32                   32"), std::string::npos)
        << limits;
    ASSERT_TRUE(http_get(port_, "/index.html"));

    idle_connections idle;
    idle.open(port_, 100);
    ASSERT_TRUE(wait_until(
        [&] { return srv_->error_log().find("pausing accept") != std::string::npos; }, 5s))
        << "the worker never ran out of descriptors";
    const int fds_full = count_fds(worker);
    // A real request queued behind the idle ones, answered once descriptors come free.
    http_client waiting(port_, 10s);
    ASSERT_TRUE(waiting.connected());
    ASSERT_TRUE(waiting.send("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"));

    const double cpu0 = cpu_seconds(worker);
    const auto t0 = clock_type::now();
    std::this_thread::sleep_for(3s);
    const double cpu_share = (cpu_seconds(worker) - cpu0) /
                             (static_cast<double>(ms_since(t0)) / 1000.0);
    const size_t logged = count_in_log(srv_->error_log(), "pausing accept");

    const auto closed_at = clock_type::now();
    idle.close_all();
    auto resp = waiting.read_response();
    const int64_t recovered_ms = ms_since(closed_at);
    auto fresh = http_get(port_, "/index.html");

    std::printf(
        "[figures] descriptor exhaustion: limit %d, worker at %d descriptors with 100 idle "
        "connections; worker CPU %.1f%% over 3 s while out of descriptors; \"pausing accept\" "
        "logged %zu time(s); a queued request answered %lld ms after the idle ones closed\n",
        limit, fds_full, cpu_share * 100.0, logged, static_cast<long long>(recovered_ms));

    EXPECT_GE(fds_full, limit - 2);
    EXPECT_LT(cpu_share, 0.2) << "the worker spins on the listener";
    EXPECT_EQ(logged, 1u);
    ASSERT_TRUE(resp) << "the queued request was never answered";
    EXPECT_EQ(resp->status, 200);
    EXPECT_LE(recovered_ms, 500);
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->status, 200);
    EXPECT_EQ(srv_->workers(), std::vector<pid_t>{worker}) << "the worker was replaced";
}

// ---- 4. process exhaustion ------------------------------------------------------------------

// A uid with no account and no process: its RLIMIT_NPROC count is ours alone.
std::optional<uid_t> unused_uid() {
    std::set<uid_t> busy;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        std::istringstream in(read_file(e.path() / "status"));
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("Uid:", 0) == 0) busy.insert(static_cast<uid_t>(std::atol(line.c_str() + 4)));
    }
    for (uid_t u = 61000; u < 62000; ++u)
        if (!busy.count(u) && !::getpwuid(u)) return u;
    return std::nullopt;
}

// Sets the soft RLIMIT_NPROC of `pid` (hard limit `hard`) from a child running as `uid`:
// changing another user's limits takes CAP_SYS_RESOURCE, which a container's root may lack,
// while a process of the same user may move the soft limit anywhere under the hard one.
bool set_nproc(pid_t pid, uid_t uid, rlim_t soft, rlim_t hard) {
    pid_t child = ::fork();
    if (child == 0) {
        rlimit rl{soft, hard};
        gid_t gid = static_cast<gid_t>(uid);
        if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(2);
        ::_exit(::prlimit(pid, RLIMIT_NPROC, &rl, nullptr) == 0 ? 0 : 1);
    }
    int status = 0;
    return child > 0 && ::waitpid(child, &status, 0) == child && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

// The delays of "cannot start a worker: ...; retrying in N ms" lines, in order.
std::vector<long> fork_retry_delays(const std::string& log) {
    std::vector<long> out;
    const std::string key = "cannot start a worker: ";
    for (size_t at = log.find(key); at != std::string::npos; at = log.find(key, at + 1)) {
        auto r = log.find("retrying in ", at);
        auto eol = log.find('\n', at);
        if (r != std::string::npos && r < eol) out.push_back(std::atol(log.c_str() + r + 12));
    }
    return out;
}

// The server runs as an unprivileged user (root is exempt from RLIMIT_NPROC). Its process
// limit is lowered under what it runs, two workers are killed, and the limit is lifted
// 2.5 s later: fork fails with EAGAIN meanwhile, which must be logged and retried with a
// growing delay (no fork loop), the server keeps serving with what is left, and the pool
// is whole again once forking is possible.
TEST_F(chaos, fork_failing_for_the_process_limit_backs_off_and_the_pool_comes_back) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: to run the server as another user";
    auto uid = unused_uid();
    ASSERT_TRUE(uid) << "no free uid in 61000..61999";
    cfg_.set("workers", "start", "3");
    cfg_.set("workers", "max", "3");
    cfg_.set("workers", "min_spare", "0");
    cfg_.set("workers", "max_spare", "3");
    srv_ = std::make_unique<server>(dir_.path(), port_);
    srv_->write_config(cfg_.render());
    write_file(srv_->root() / "index.html", page);
    for (const auto& e : fs::recursive_directory_iterator(dir_.path()))
        ASSERT_EQ(::chown(e.path().c_str(), *uid, *uid), 0);
    ASSERT_EQ(::chown(dir_.path().c_str(), *uid, *uid), 0);
    ASSERT_TRUE(srv_->start({"-F"}, {.rlimits = {{RLIMIT_NPROC, 64}}, .uid = uid, .gid = *uid}))
        << srv_->output() << srv_->error_log();
    ASSERT_TRUE(srv_->wait_workers(3));
    const pid_t sup = srv_->pid();

    // The supervisor and its three workers are four processes of this uid: two may not fork.
    ASSERT_TRUE(set_nproc(sup, *uid, 2, 64));
    auto before = srv_->workers();
    ::kill(before[0], SIGKILL);
    ::kill(before[1], SIGKILL);
    const auto t0 = clock_type::now();
    std::this_thread::sleep_for(2500ms);
    const auto during = srv_->workers();
    auto served = http_get(port_, "/index.html");
    const std::string log_during = srv_->error_log();
    auto delays = fork_retry_delays(log_during);

    ASSERT_TRUE(set_nproc(sup, *uid, 64, 64));
    const auto lifted = clock_type::now();
    bool back = srv_->wait_workers(3, 15s);
    const int64_t back_ms = ms_since(lifted);
    auto after = http_get(port_, "/index.html");
    const bool alive = ::kill(sup, 0) == 0;

    std::string d;
    for (long x : delays) d += (d.empty() ? "" : ", ") + std::to_string(x);
    std::printf(
        "[figures] process exhaustion: %zu fork failures logged in %lld ms of RLIMIT_NPROC=2 "
        "(retry delays %s ms); %zu worker(s) serving meanwhile; pool back at 3 workers %lld ms "
        "after the limit was lifted\n",
        delays.size(), static_cast<long long>(duration_cast<milliseconds>(lifted - t0).count()),
        d.c_str(), during.size(), static_cast<long long>(back_ms));

    EXPECT_TRUE(alive);
    EXPECT_NE(log_during.find("fork: Resource temporarily unavailable"), std::string::npos);
    ASSERT_GE(delays.size(), 3u) << "fork failures are not retried";
    EXPECT_LE(delays.size(), 8u) << "a fork loop, not a back-off";
    for (size_t i = 1; i < delays.size(); ++i) EXPECT_GT(delays[i], delays[i - 1]);
    EXPECT_EQ(during.size(), 1u);
    ASSERT_TRUE(served) << "nobody served while forks failed";
    EXPECT_EQ(served->status, 200);
    EXPECT_TRUE(back) << "the pool did not come back";
    // The last delay still runs when the limit goes, then one probe worker must live a
    // second before the rest follow (crash-loop rule): that, a tick and some slack.
    EXPECT_LE(back_ms, delays.back() + 3000);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 200);
    EXPECT_TRUE(zombie_children_of(sup).empty());
}

}  // namespace
}  // namespace preforkd::test
