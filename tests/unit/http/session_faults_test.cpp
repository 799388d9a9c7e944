// The session through an in-memory transport that fails on command: EINTR, EAGAIN, short
// reads and writes, and hard errors, at chosen points (issue 13 item 7, session side).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "memory_transport.hpp"
#include "session_fixture.hpp"

using namespace preforkd;
using namespace preforkd::http;
using namespace preforkd::http::testing;
using preforkd::testing::memory_transport;

namespace {

const std::string a_request = "GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n";

class session_faults_test : public session_fixture {
  protected:
    void open_memory() {
        session_.reset();
        mt_ = std::make_unique<memory_transport>();
        accepted_connection c;
        c.io = mt_.get();
        c.peer = v4_peer("127.0.0.1");
        c.peer_len = sizeof(sockaddr_in);
        session_ = service_->open(std::move(c));
        ASSERT_TRUE(session_);
    }
    bool turn(uint32_t events = EPOLLIN | EPOLLOUT) {
        if (session_ && !session_->on_io(events)) session_.reset();
        return open();
    }
    // What the same request gets over a transport that never fails.
    std::string clean_answer(const std::string& request) {
        open_memory();
        mt_->feed(request);
        turn();
        std::string out = mt_->take_output();
        session_.reset();
        return out;
    }
    static std::string without_date(std::string s) {
        for (size_t at = s.find("\r\nDate: "); at != std::string::npos;
             at = s.find("\r\nDate: ", at + 2))
            s.erase(at + 8, http_date_length);
        return s;
    }

    std::unique_ptr<memory_transport> mt_;
};

TEST_F(session_faults_test, a_clean_transport_answers_in_one_turn) {
    open_memory();
    mt_->feed(a_request);
    EXPECT_TRUE(turn());
    auto r = parse_responses(mt_->take_output());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body.size(), 100u);
    // The short read showed the socket drained: no read to confirm it with EAGAIN.
    EXPECT_EQ(mt_->read_calls, 1u);
    EXPECT_EQ(mt_->write_calls, 1u);
}

TEST_F(session_faults_test, retries_a_read_interrupted_by_a_signal) {
    const std::string expected = without_date(clean_answer(a_request));
    open_memory();
    mt_->reads = {memory_transport::fail(EINTR), memory_transport::fail(EINTR)};
    mt_->feed(a_request);
    EXPECT_TRUE(turn());
    EXPECT_EQ(without_date(mt_->take_output()), expected);
}

TEST_F(session_faults_test, retries_a_write_interrupted_by_a_signal) {
    const std::string expected = without_date(clean_answer(a_request));
    open_memory();
    mt_->writes = {memory_transport::fail(EINTR)};
    mt_->feed(a_request);
    EXPECT_TRUE(turn());
    EXPECT_EQ(without_date(mt_->take_output()), expected);
}

TEST_F(session_faults_test, a_read_that_would_block_waits_for_the_next_edge) {
    open_memory();
    mt_->reads = {memory_transport::fail(EAGAIN)};
    mt_->feed(a_request);
    EXPECT_TRUE(turn());
    EXPECT_TRUE(mt_->output().empty());
    EXPECT_FALSE(session_->busy());
    EXPECT_TRUE(turn(EPOLLIN));
    EXPECT_EQ(parse_responses(mt_->take_output()).size(), 1u);
}

TEST_F(session_faults_test, a_write_that_would_block_resumes_on_epollout) {
    const std::string expected = without_date(clean_answer(a_request));
    open_memory();
    mt_->writes = {memory_transport::fail(EAGAIN)};
    mt_->feed(a_request);
    EXPECT_TRUE(turn());
    EXPECT_TRUE(mt_->output().empty());
    EXPECT_TRUE(session_->busy());
    EXPECT_EQ(session_->deadline_ms(), now_ + send_timeout_ms);
    EXPECT_TRUE(turn(EPOLLOUT));
    EXPECT_EQ(without_date(mt_->take_output()), expected);
    EXPECT_FALSE(session_->busy());
}

TEST_F(session_faults_test, short_writes_deliver_every_byte_in_order) {
    const std::string pipelined = a_request + "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n" +
                                  "HEAD /index.html HTTP/1.1\r\nHost: t\r\n\r\n" + a_request;
    const std::string expected = without_date(clean_answer(pipelined));
    ASSERT_GT(expected.size(), big_.size());
    open_memory();
    mt_->feed(pipelined);
    // Every write and sendfile moves at most 7000 bytes, and the socket takes 20000 per turn.
    for (int i = 0; i < 2000; ++i) mt_->writes.push_back(memory_transport::at_most(7000));
    std::string got;
    for (int i = 0; i < 200 && got.size() < expected.size(); ++i) {
        mt_->window = 20000;
        ASSERT_TRUE(turn(EPOLLOUT));
        got += mt_->take_output();
    }
    EXPECT_EQ(without_date(got), expected);
    EXPECT_TRUE(open());
}

TEST_F(session_faults_test, short_reads_of_a_head_parse_like_one_read) {
    const std::string expected = without_date(clean_answer(a_request));
    open_memory();
    mt_->feed(a_request);
    for (size_t i = 0; i < a_request.size(); ++i)
        mt_->reads.push_back(memory_transport::at_most(3));
    std::string got;
    // Each short read looks like a drained socket: the session waits for the next edge.
    for (int i = 0; i < 100 && got.empty(); ++i) {
        ASSERT_TRUE(turn(EPOLLIN));
        got += mt_->take_output();
    }
    EXPECT_EQ(without_date(got), expected);
}

// A TLS transport holds decrypted bytes that no EPOLLIN edge announces: while pending() is
// not 0 a short read does not mean drained, and the session reads on in the same turn.
TEST_F(session_faults_test, reads_on_while_the_transport_holds_pending_bytes) {
    open_memory();
    mt_->report_pending = true;
    mt_->feed(a_request + a_request);
    for (int i = 0; i < 100; ++i) mt_->reads.push_back(memory_transport::at_most(5));
    EXPECT_TRUE(turn(EPOLLIN));
    EXPECT_EQ(parse_responses(mt_->take_output()).size(), 2u);
}

TEST_F(session_faults_test, a_failed_read_closes_without_an_answer) {
    for (int err : {ENOMEM, ECONNRESET, EIO}) {
        open_memory();
        mt_->reads = {memory_transport::fail(err)};
        mt_->feed(a_request);
        EXPECT_FALSE(turn()) << err;
        EXPECT_TRUE(mt_->output().empty());
    }
}

TEST_F(session_faults_test, a_failed_write_closes_the_connection) {
    for (int err : {ENOBUFS, ENOMEM, EPIPE, ECONNRESET}) {
        open_memory();
        mt_->writes = {memory_transport::fail(err)};
        mt_->feed(a_request);
        EXPECT_FALSE(turn()) << err;
    }
}

TEST_F(session_faults_test, a_failed_sendfile_midway_closes_the_connection) {
    open_memory();
    mt_->writes = {memory_transport::at_most(1 << 20), memory_transport::at_most(50000),
                   memory_transport::fail(ENOMEM)};
    mt_->feed("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_FALSE(turn());
    EXPECT_EQ(mt_->file_bytes, 50000u);
}

TEST_F(session_faults_test, sendfile_that_would_block_resumes_where_it_stopped) {
    open_memory();
    mt_->writes = {memory_transport::at_most(1 << 20), memory_transport::at_most(100000),
                   memory_transport::fail(EAGAIN)};
    mt_->feed("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_TRUE(turn());
    EXPECT_EQ(mt_->file_bytes, 100000u);
    EXPECT_TRUE(turn(EPOLLOUT));
    auto r = parse_responses(mt_->take_output());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].body == big_);
}

// The head goes with `more` before a sendfile body (one segment for both), and the last
// answer before a close with `more` too (the FIN rides on it).
TEST_F(session_faults_test, asks_for_more_before_a_file_body_and_before_a_close) {
    open_memory();
    mt_->writes = {memory_transport::at_most(10)};  // the head, cut: the next write is seen
    mt_->feed("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_TRUE(turn());
    EXPECT_TRUE(mt_->last_more);
    open_memory();
    mt_->feed("GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_FALSE(turn());
    EXPECT_TRUE(mt_->last_more);
    open_memory();
    mt_->feed(a_request);
    EXPECT_TRUE(turn());
    EXPECT_FALSE(mt_->last_more);
}

TEST_F(session_faults_test, closes_at_once_when_the_fin_came_with_the_request) {
    open_memory();
    mt_->feed(a_request);
    mt_->close_input();
    EXPECT_FALSE(turn(EPOLLIN | EPOLLRDHUP));
    EXPECT_EQ(parse_responses(mt_->take_output()).size(), 1u);
}

TEST_F(session_faults_test, an_error_answer_shuts_the_write_side_and_lingers) {
    open_memory();
    mt_->feed("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n" + a_request);
    EXPECT_TRUE(turn());
    EXPECT_TRUE(mt_->shut_write);
    auto r = parse_responses(mt_->take_output());
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 400);
    mt_->close_input();
    EXPECT_FALSE(turn(EPOLLIN | EPOLLRDHUP));
}

}  // namespace
