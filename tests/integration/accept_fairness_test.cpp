// EPOLLEXCLUSIVE wakes the first waiting worker in the order the workers registered the
// listener, so without countermeasures one worker takes nearly every new connection. The
// worker loop re-registers its listener after a short turn of accepts (event_loop.cpp);
// this checks the spread with the per-worker `accepted` counts of the status page.
#include <algorithm>
#include <regex>

#include "integration/fixture.hpp"
#include "integration/load.hpp"

namespace preforkd::test {
namespace {

using accept_fairness = server_test;

std::vector<uint64_t> accepted_per_worker(uint16_t port) {
    std::vector<uint64_t> out;
    auto r = http_get(port, "/server-status?json");
    if (!r || r->status != 200) return out;
    static const std::regex accepted(R"("accepted": (\d+))");
    // The workers' entries only: the totals that follow them have an "accepted" too.
    const std::string workers = r->body.substr(0, r->body.find("\"totals\""));
    for (std::sregex_iterator it(workers.begin(), workers.end(), accepted), end; it != end; ++it)
        out.push_back(std::stoull((*it)[1].str()));
    return out;
}

TEST_F(accept_fairness, new_connections_spread_over_the_workers) {
    const std::string page(512, 'f');
    write_file(dir_.path() / "www/index.html", page);
    cfg_.set("workers", "start", "4");
    cfg_.set("workers", "max", "4");
    cfg_.set("workers", "min_spare", "0");
    cfg_.set("workers", "max_spare", "4");
    cfg_.set("log", "access", "\"off\"");
    start();
    ASSERT_TRUE(srv_->wait_workers(4));
    // Every worker is waiting on the listener before the load starts.
    ASSERT_TRUE(wait_until([&] { return accepted_per_worker(port_).size() == 4; }, 5s));

    load_generator load({.port = port_,
                         .expected_body = page,
                         .threads = 2,
                         .keep_alive = false,
                         .duration = 1500ms});
    load.start();
    auto r = load.wait();
    EXPECT_EQ(r.failed, 0u);

    auto counts = accepted_per_worker(port_);
    ASSERT_EQ(counts.size(), 4u);
    std::sort(counts.begin(), counts.end());
    uint64_t total = 0;
    for (uint64_t c : counts) total += c;
    std::printf(
        "[figures] accepted per worker: %llu %llu %llu %llu\n",
        static_cast<unsigned long long>(counts[0]), static_cast<unsigned long long>(counts[1]),
        static_cast<unsigned long long>(counts[2]), static_cast<unsigned long long>(counts[3]));
    ASSERT_GE(total, 400u) << "too little load to judge";
    // The benchmark's target is 1.5 (tests/bench, scenario f). Here 4 workers share 2 CPUs
    // with the load generator and, under ctest -j2, another test: a worker descheduled for a
    // while was seen at a third of its peers (1007 against 3087) with nothing wrong. An
    // unfair accept (a worker never woken, or woken last every time) stays far beyond 3x.
    EXPECT_LE(counts[3], 3 * counts[0]);
}

}  // namespace
}  // namespace preforkd::test
