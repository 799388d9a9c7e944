#include "http/status_page.hpp"

#include <gtest/gtest.h>

using namespace preforkd;
using namespace preforkd::http;

namespace {

status_snapshot sample() {
    status_snapshot s;
    s.supervisor_pid = 1234;
    s.generation = 2;
    s.uptime_s = 3600;
    s.workers.push_back({0, 1240, 2, worker_state::idle, 0, 1520, 1556480, 310, 120});
    s.workers.push_back({3, 1243, 2, worker_state::busy, 2, 4500, 4608000, 90, 5});
    return s;
}

}  // namespace

TEST(status_page, renders_json_in_the_documented_shape) {
    std::string out;
    render_status_json(sample(), out);
    EXPECT_EQ(out,
              "{\"supervisor\": {\"pid\": 1234, \"generation\": 2, \"uptime_s\": 3600},\n"
              " \"workers\": [{\"slot\": 0, \"pid\": 1240, \"generation\": 2, \"state\": "
              "\"idle\", \"connections\": 0, \"requests\": 1520, \"bytes\": 1556480, "
              "\"accepted\": 310, \"heartbeat_age_ms\": 120},\n"
              "              {\"slot\": 3, \"pid\": 1243, \"generation\": 2, \"state\": "
              "\"busy\", \"connections\": 2, \"requests\": 4500, \"bytes\": 4608000, "
              "\"accepted\": 90, \"heartbeat_age_ms\": 5}],\n"
              " \"totals\": {\"workers\": 2, \"idle\": 1, \"busy\": 1, \"requests\": 6020, "
              "\"bytes\": 6164480, \"accepted\": 400, \"responses\": {\"1xx\": 0, \"2xx\": 0, "
              "\"3xx\": 0, \"4xx\": 0, \"5xx\": 0}, \"reloads\": 0, \"worker_crashes\": 0, "
              "\"fork_failures\": 0, \"tls_handshakes\": 0, \"tls_resumed\": 0, "
              "\"tls_failures\": 0}}\n");
}

TEST(status_page, tls_counters_total_and_each_tls_worker_names_its_send_path) {
    status_snapshot s = sample();
    s.workers[0].tls_handshakes = 7;
    s.workers[0].tls_resumed = 2;
    s.workers[0].tls_failures = 1;
    s.workers[0].tls_send_path = 1;
    s.workers[1].tls_handshakes = 3;
    s.workers[1].tls_resumed = 1;
    s.workers[1].tls_send_path = 2;
    std::string json;
    render_status_json(s, json);
    EXPECT_NE(json.find("\"tls_handshakes\": 10, \"tls_resumed\": 3, \"tls_failures\": 1}"),
              std::string::npos)
        << json;
    EXPECT_NE(json.find("\"heartbeat_age_ms\": 120, \"tls_path\": \"userspace\"}"),
              std::string::npos);
    EXPECT_NE(json.find("\"heartbeat_age_ms\": 5, \"tls_path\": \"ktls\"}"), std::string::npos);
    std::string text;
    render_status_text(s, "0.1.0", text);
    EXPECT_NE(text.find("TLSHandshakes: 10\nTLSResumed: 3\nTLSFailures: 1\n"), std::string::npos);
    EXPECT_NE(text.find("heartbeat_age_ms=5 tls_path=ktls\n"), std::string::npos);
}

// Totals never go down: a reaped worker's counts stay in them, through the retired sums.
TEST(status_page, totals_include_retired_workers_and_the_supervisors_counters) {
    status_snapshot s = sample();
    s.retired.requests = 1000;
    s.retired.bytes = 2048;
    s.retired.accepted = 5;
    s.retired.responses = {1, 900, 50, 40, 9};
    s.workers[0].responses = {0, 1500, 0, 20, 0};
    s.supervisor = {4, 2, 1};
    std::string json;
    render_status_json(s, json);
    EXPECT_NE(json.find("\"requests\": 7020, \"bytes\": 6166528, \"accepted\": 405, "
                        "\"responses\": {\"1xx\": 1, \"2xx\": 2400, \"3xx\": 50, "
                        "\"4xx\": 60, \"5xx\": 9}, \"reloads\": 4, \"worker_crashes\": 2, "
                        "\"fork_failures\": 1, "),
              std::string::npos)
        << json;
    std::string text;
    render_status_text(s, "0.1.0", text);
    EXPECT_NE(text.find("Total Accesses: 7020\n"), std::string::npos) << text;
    EXPECT_NE(text.find("Reloads: 4\nWorkerCrashes: 2\nForkFailures: 1\n"), std::string::npos);
}

TEST(status_page, snapshot_keeps_a_reaped_workers_counts_in_the_totals) {
    auto board = scoreboard::create(4);
    ASSERT_TRUE(board.ok());
    scoreboard& b = *board;
    b.prepare(0, 1, 5'000);
    b.slot(0).set_state(worker_state::idle);
    scoreboard_slot::bump(b.slot(0).requests, 12);
    scoreboard_slot::bump(b.slot(0).responses[1], 12);
    scoreboard_slot::bump(b.header().reloads, 3);
    b.release(0);
    status_snapshot s = take_snapshot(b, 10'000, 0);
    EXPECT_TRUE(s.workers.empty());
    EXPECT_EQ(s.retired.requests, 12u);
    EXPECT_EQ(s.retired.responses[1], 12u);
    EXPECT_EQ(s.supervisor.reloads, 3u);
    std::string json;
    render_status_json(s, json);
    EXPECT_NE(json.find("\"requests\": 12,"), std::string::npos) << json;
}

TEST(status_page, renders_json_with_no_workers) {
    status_snapshot s;
    std::string out;
    render_status_json(s, out);
    EXPECT_NE(out.find("\"workers\": []"), std::string::npos);
}

TEST(status_page, renders_apache_like_text) {
    std::string out;
    render_status_text(sample(), "0.1.0", out);
    EXPECT_NE(out.find("ServerVersion: preforkd/0.1.0\n"), std::string::npos);
    EXPECT_NE(out.find("SupervisorPID: 1234\n"), std::string::npos);
    EXPECT_NE(out.find("Generation: 2\n"), std::string::npos);
    EXPECT_NE(out.find("Uptime: 3600\n"), std::string::npos);
    EXPECT_NE(out.find("Total Accesses: 6020\n"), std::string::npos);
    EXPECT_NE(out.find("Total kBytes: 6020\n"), std::string::npos);
    EXPECT_NE(out.find("BusyWorkers: 1\n"), std::string::npos);
    EXPECT_NE(out.find("IdleWorkers: 1\n"), std::string::npos);
    EXPECT_NE(out.find("Scoreboard: _W\n"), std::string::npos);
    EXPECT_NE(out.find("Worker: slot=3 pid=1243 generation=2 state=busy connections=2 "
                       "requests=4500 bytes=4608000 accepted=90 heartbeat_age_ms=5\n"),
              std::string::npos);
}

TEST(status_page, snapshot_lists_live_slots_only) {
    auto board = scoreboard::create(8);
    ASSERT_TRUE(board.ok());
    scoreboard& b = *board;
    b.header().supervisor_pid = 99;
    b.header().generation = 3;
    b.header().started_wall_ms = 1'000'000;
    for (uint32_t i = 0; i < 3; ++i) b.prepare(i, 3, 5'000);
    b.slot(0).pid = 100;
    b.slot(0).set_state(worker_state::idle);
    b.slot(0).requests = 7;
    b.slot(0).heartbeat_ms = 9'000;
    b.release(1);  // reaped: empty, not listed
    b.slot(2).pid = 102;
    b.slot(2).set_state(worker_state::retiring);

    status_snapshot s = take_snapshot(b, 10'000, 1'061'000);
    EXPECT_EQ(s.supervisor_pid, 99);
    EXPECT_EQ(s.generation, 3u);
    EXPECT_EQ(s.uptime_s, 61);
    ASSERT_EQ(s.workers.size(), 2u);
    EXPECT_EQ(s.workers[0].slot, 0u);
    EXPECT_EQ(s.workers[0].pid, 100);
    EXPECT_EQ(s.workers[0].requests, 7u);
    EXPECT_EQ(s.workers[0].heartbeat_age_ms, 1'000);
    EXPECT_EQ(s.workers[1].slot, 2u);
    EXPECT_EQ(s.workers[1].state, worker_state::retiring);
}
