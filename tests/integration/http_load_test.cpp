// The HTTP service under many clients: a slowloris is cut off on time while others are
// served, 1,000 keep-alive connections spread over the pool, access log lines of several
// workers under load, and the status page.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"
#include "integration/load.hpp"

namespace preforkd::test {
namespace {

using http_load = server_test;
using clock_type = std::chrono::steady_clock;

TEST_F(http_load, a_slowloris_is_cut_off_at_header_timeout_while_others_are_served) {
    // One worker that cannot be replaced: whoever serves the others meanwhile is the
    // worker holding the slow connection.
    cfg_.set("workers", "start", "1").set("workers", "max", "1").set("workers", "min_spare", "0");
    cfg_.set("http", "header_timeout", "\"2s\"");
    start();
    const std::string head =
        "GET / HTTP/1.1\r\nHost: x\r\nX-Slowloris: " + std::string(100, 'a') + "\r\n\r\n";
    http_client slow(port_, 5s);
    ASSERT_TRUE(slow.connected());

    // Other clients, on new connections, all along: their answers must not wait.
    std::atomic<bool> done{false};
    std::mutex m;
    std::vector<std::pair<clock_type::time_point, clock_type::duration>> others;  // end, latency
    int other_failures = 0;
    std::thread other([&] {
        while (!done) {
            auto s = clock_type::now();
            auto r = http_get(port_, "/index.html");
            std::lock_guard<std::mutex> g(m);
            if (!r || r->status != 200)
                ++other_failures;
            else
                others.emplace_back(clock_type::now(), clock_type::now() - s);
            std::this_thread::sleep_for(150ms);
        }
    });

    // One byte every 300 ms. A timer reset by each byte would let this run for 30 s; the
    // loop gives up after 8.
    const auto t0 = clock_type::now();
    std::optional<clock_type::time_point> cut_at;
    bool got_408 = false;
    for (size_t i = 0; i < head.size() && clock_type::now() - t0 < 8s; ++i) {
        if (!slow.send(head.substr(i, 1))) {
            cut_at = clock_type::now();  // reset: the server is gone from this connection
            break;
        }
        pollfd p{slow.fd(), POLLIN, 0};
        const auto next = t0 + (i + 1) * 300ms;
        int ready = 0;
        do {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(next - clock_type::now());
            ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
        } while (ready == 0 && clock_type::now() < next);
        if (ready > 0) {
            cut_at = clock_type::now();
            auto r = slow.read_response();
            got_408 = r && r->status == 408;
            break;
        }
    }
    done = true;
    other.join();
    ASSERT_TRUE(cut_at) << "the slow client was never cut off";
    const auto cut = *cut_at - t0;
    EXPECT_TRUE(got_408);
    EXPECT_GE(cut, 1800ms);
    EXPECT_LE(cut, 3500ms) << "header_timeout counts from the first byte, not the last";
    EXPECT_EQ(other_failures, 0);
    int meanwhile = 0;
    for (const auto& [end, latency] : others) {
        if (end < *cut_at) ++meanwhile;
        EXPECT_LT(latency, 1s) << "another client waited behind the slowloris";
    }
    EXPECT_GE(meanwhile, 3) << "too few other requests answered while the slowloris was open";
    EXPECT_TRUE(slow.closed_by_peer(2s));
}

// Raises the soft RLIMIT_NOFILE of this process (and so of the server it starts) to at
// least `want`; false if the hard limit does not allow it.
bool ensure_fd_limit(rlim_t want) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want) return true;
    if (rl.rlim_cur == RLIM_INFINITY) return true;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) return false;
    rl.rlim_cur = want;
    return ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

std::optional<json_value> status_json(uint16_t port) {
    auto r = http_get(port, "/server-status?json");
    if (!r || r->status != 200) return std::nullopt;
    return parse_json(r->body);
}

TEST_F(http_load, a_thousand_concurrent_keep_alive_connections_are_all_served) {
    constexpr int clients = 1000;
    if (!ensure_fd_limit(clients + 200))
        GTEST_SKIP() << "RLIMIT_NOFILE hard limit is below " << clients + 200;
    // 400 connections per worker at most: the 1,000 need at least 3 of the 2-4 workers.
    cfg_.set("workers", "start", "2").set("workers", "max", "4");
    cfg_.set("workers", "max_connections", "400");
    cfg_.set("server", "backlog", "2048");
    cfg_.set("http", "keepalive_timeout", "\"30s\"");
    write_file(dir_.path() / "www/k.txt", "kept");
    start();

    std::vector<std::unique_ptr<http_client>> conns;
    conns.reserve(clients);
    for (int i = 0; i < clients; ++i) {
        conns.push_back(std::make_unique<http_client>(port_, 10s));
        ASSERT_TRUE(conns.back()->connected()) << "connection " << i;
        ASSERT_TRUE(conns.back()->send("GET /k.txt HTTP/1.1\r\nHost: x\r\n\r\n")) << i;
    }
    // Two rounds on every connection: the second proves each one was kept alive.
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < clients; ++i) {
            auto r = conns[static_cast<size_t>(i)]->read_response();
            ASSERT_TRUE(r) << "round " << round << ", connection " << i;
            ASSERT_EQ(r->status, 200);
            ASSERT_EQ(r->body, "kept");
            ASSERT_EQ(r->header("connection"), "");
        }
        if (round == 1) break;
        // While all 1,000 are open: how the pool holds them.
        auto js = status_json(port_);
        ASSERT_TRUE(js);
        const json_value* workers = js->get("workers");
        ASSERT_TRUE(workers);
        double total = 0;
        int holding = 0;
        for (const json_value& w : workers->arr) {
            double c = w.get("connections")->num;
            EXPECT_LE(c, 400) << "a worker went past workers.max_connections";
            total += c;
            if (c > 0) ++holding;
        }
        EXPECT_GE(total, clients);
        EXPECT_GE(holding, 3);
        EXPECT_LE(workers->arr.size(), 4u);
        for (auto& c : conns) ASSERT_TRUE(c->send("GET /k.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    EXPECT_EQ(count_access_lines(*srv_, "\"GET /k.txt HTTP/1.1\" 200 4 "), size_t{2 * clients});
}

TEST_F(http_load, access_log_lines_of_several_workers_under_load_all_parse) {
    cfg_.set("workers", "start", "3").set("workers", "max", "3");
    const std::string body = "<h1>logged</h1>\n";
    write_file(dir_.path() / "www/index.html", body);
    start();
    ASSERT_TRUE(srv_->wait_workers(3));
    load_options o;
    o.port = port_;
    o.target = "/index.html";
    o.expected_body = body;
    o.threads = 4;
    o.duration = 1500ms;
    load_generator load(o);
    load.start();
    // Meanwhile, requests whose logged fields need escaping.
    const std::vector<std::string> odd = {
        "GET /odd%20name?q=\"x\" HTTP/1.1\r\nHost: x\r\nUser-Agent: evil\" 200 \"x\r\n"
        "Referer: back\\slash\r\nConnection: close\r\n\r\n",
        "GET /bytes HTTP/1.1\r\nHost: x\r\nUser-Agent: \x80\xff\x7f\r\nConnection: close\r\n\r\n",
        "GET /bad\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (const auto& req : odd) send_raw(port_, req, false, 500ms);
    load_result res = load.wait();
    ASSERT_EQ(res.failed, 0u) << (res.samples.empty() ? "" : res.samples[0]);
    ASSERT_GT(res.requests, 100u);

    auto lines = access_log_lines(*srv_);
    uint64_t index_lines = 0;
    for (const auto& l : lines) {
        auto e = parse_access_line(l);
        ASSERT_TRUE(e) << "not Combined Log Format: " << l;
        EXPECT_EQ(e->client, "127.0.0.1");
        if (e->request == "GET /index.html HTTP/1.1") {
            ++index_lines;
            EXPECT_EQ(e->status, 200);
            EXPECT_EQ(e->bytes, std::to_string(body.size()));
        }
    }
    EXPECT_EQ(index_lines, res.requests);
    EXPECT_EQ(lines.size(), res.requests + odd.size());

    // Several workers wrote them: each worker's scoreboard count of requests.
    auto js = status_json(port_);
    ASSERT_TRUE(js);
    int serving = 0;
    double total = 0;
    for (const json_value& w : js->get("workers")->arr) {
        if (w.get("requests")->num > 0) ++serving;
        total += w.get("requests")->num;
    }
    EXPECT_GE(serving, 2) << "the load went to one worker only";
    EXPECT_GE(total, static_cast<double>(res.requests));
}

TEST_F(http_load, status_page_lists_the_supervisor_and_every_live_worker_as_text_and_json) {
    cfg_.set("workers", "start", "3").set("workers", "max", "3");
    start();
    ASSERT_TRUE(srv_->wait_workers(3));
    const auto pids = srv_->workers();
    // Every worker has published its slot once the pool answers on all of them.
    ASSERT_TRUE(wait_until(
        [&] {
            auto js = status_json(port_);
            return js && js->get("workers") && js->get("workers")->arr.size() == pids.size();
        },
        5s));

    auto text = http_get(port_, "/server-status");
    ASSERT_TRUE(text);
    EXPECT_EQ(text->status, 200);
    EXPECT_EQ(text->header("content-type").rfind("text/plain", 0), 0u);
    EXPECT_NE(text->body.find("SupervisorPID: " + std::to_string(srv_->pid()) + "\n"),
              std::string::npos)
        << text->body;
    for (pid_t p : pids)
        EXPECT_NE(text->body.find(" pid=" + std::to_string(p) + " "), std::string::npos) << p;

    auto r = http_get(port_, "/server-status?json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("content-type"), "application/json");
    auto js = parse_json(r->body);
    ASSERT_TRUE(js) << "not JSON: " << r->body;
    const json_value* sup = js->get("supervisor");
    ASSERT_TRUE(sup && sup->get("pid") && sup->get("generation") && sup->get("uptime_s"));
    EXPECT_EQ(sup->get("pid")->num, srv_->pid());
    EXPECT_GE(sup->get("generation")->num, 1);
    std::set<pid_t> listed;
    for (const json_value& w : js->get("workers")->arr) {
        for (const char* key : {"slot", "pid", "generation", "state", "connections", "requests",
                                "bytes", "accepted", "heartbeat_age_ms"})
            EXPECT_TRUE(w.get(key)) << key;
        listed.insert(static_cast<pid_t>(w.get("pid")->num));
        EXPECT_NE(w.get("state")->str, "");
    }
    EXPECT_EQ(listed, std::set<pid_t>(pids.begin(), pids.end()));
    const json_value* totals = js->get("totals");
    ASSERT_TRUE(totals && totals->get("workers"));
    EXPECT_EQ(totals->get("workers")->num, static_cast<double>(pids.size()));
    // Other query words do not switch to JSON; ?json among them does.
    auto mixed = http_get(port_, "/server-status?a=1&json");
    ASSERT_TRUE(mixed);
    EXPECT_TRUE(parse_json(mixed->body));
}

TEST_F(http_load, status_page_is_403_to_an_address_outside_status_allow) {
    cfg_.set("http", "status_allow", "[\"10.0.0.0/8\", \"::1/128\"]");
    start();
    for (const char* t : {"/server-status", "/server-status?json"}) {
        auto r = http_get(port_, t);
        ASSERT_TRUE(r) << t;
        EXPECT_EQ(r->status, 403) << t;
        EXPECT_EQ(r->body.find("SupervisorPID"), std::string::npos);
        EXPECT_EQ(r->body.find("\"supervisor\""), std::string::npos);
    }
    auto index = http_get(port_, "/");
    ASSERT_TRUE(index);
    EXPECT_EQ(index->status, 200);
}

}  // namespace
}  // namespace preforkd::test
