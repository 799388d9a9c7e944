#include "runtime/status_view.hpp"

#include <gtest/gtest.h>

namespace preforkd {
namespace {

constexpr int64_t now = 1'000'000;
constexpr int64_t wall = 1'700'000'000'000;

scoreboard board_with_workers() {
    auto b = scoreboard::create(8);
    EXPECT_TRUE(b.ok());
    scoreboard sb = std::move(*b);
    sb.header().supervisor_pid = 1234;
    sb.header().generation = 3;
    sb.header().started_wall_ms = wall - 3'723'000;  // 1h02m03s
    sb.prepare(0, 3, now - 65'000);
    sb.slot(0).pid = 1240;
    sb.slot(0).set_state(worker_state::idle);
    sb.slot(0).requests = 1520;
    sb.slot(0).bytes = 1556480;
    sb.slot(0).accepted = 310;
    sb.slot(0).heartbeat_ms = now - 400;
    sb.prepare(1, 3, now - 5'000);
    sb.slot(1).pid = 1241;
    sb.slot(1).set_state(worker_state::busy);
    sb.slot(1).connections = 2;
    sb.slot(1).requests = 4500;
    sb.slot(1).bytes = 512;
    sb.prepare(2, 2, now);  // reaped: not shown
    sb.release(2);
    sb.prepare(3, 2, now - 7'200'000);
    sb.slot(3).pid = 1190;
    sb.slot(3).set_state(worker_state::retiring);
    sb.slot(3).connections = 1;
    return sb;
}

TEST(status_view, summary_scoreboard_line_and_one_row_per_live_worker) {
    scoreboard sb = board_with_workers();
    const std::string t = render_status_view(sb, now, wall);
    EXPECT_NE(t.find("preforkd supervisor 1234, generation 3, up 1h02m\n"), std::string::npos) << t;
    EXPECT_NE(t.find("3 workers: 0 starting, 1 idle, 1 busy, 1 retiring; 3 connections open\n"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("6020 requests, 1.5 MiB sent, 310 connections accepted"), std::string::npos)
        << t;
    EXPECT_NE(t.find("Scoreboard: _WG\n"), std::string::npos) << t;
    EXPECT_NE(t.find(" SLOT      PID  GEN STATE"), std::string::npos) << t;
    EXPECT_NE(t.find("    0     1240    3 idle           0       1520    1.5 MiB       310 "
                     "    0s   1m05s\n"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("    1     1241    3 busy           2       4500      512 B"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("    3     1190    2 retiring       1"), std::string::npos) << t;
    EXPECT_EQ(t.find("\n    2 "), std::string::npos) << t;  // the released slot
}

TEST(status_view, an_empty_board_has_no_table) {
    auto b = scoreboard::create(4);
    ASSERT_TRUE(b.ok());
    const std::string t = render_status_view(*b, now, wall);
    EXPECT_NE(t.find("0 workers:"), std::string::npos) << t;
    EXPECT_NE(t.find("up ?"), std::string::npos) << t;
    EXPECT_EQ(t.find("SLOT"), std::string::npos) << t;
}

TEST(status_view, human_units) {
    EXPECT_EQ(human_bytes(0), "0 B");
    EXPECT_EQ(human_bytes(1023), "1023 B");
    EXPECT_EQ(human_bytes(1024), "1.0 KiB");
    EXPECT_EQ(human_bytes(1536), "1.5 KiB");
    EXPECT_EQ(human_bytes(20u << 20), "20 MiB");
    EXPECT_EQ(human_bytes(uint64_t{3} << 40), "3.0 TiB");
    EXPECT_EQ(human_duration(-5), "0s");
    EXPECT_EQ(human_duration(59'999), "59s");
    EXPECT_EQ(human_duration(187'000), "3m07s");
    EXPECT_EQ(human_duration(7'500'000), "2h05m");
    EXPECT_EQ(human_duration(273'600'000), "3d04h");
}

}  // namespace
}  // namespace preforkd
