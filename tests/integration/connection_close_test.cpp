// The last answer on a connection leaves with the FIN in the same segment (MSG_MORE before
// close, src/http/session.cpp): a client making a connection per request gets one packet,
// one wake-up and one read fewer each time. Counted with the client socket's TCP_INFO.
#include <arpa/inet.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_segs_in (glibc's lacks it)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "integration/fixture.hpp"

namespace preforkd::test {
namespace {

using connection_close = server_test;

// Segments the client received over one connection-per-request exchange, or 0 on failure.
uint32_t segments_in_for_one_close_request(uint16_t port) {
    int fd = connect_loopback(port);
    if (fd < 0) return 0;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint32_t segs = 0;
    const char req[] = "GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof req - 1)) {
        char buf[8192];
        ssize_t n;
        size_t got = 0;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got += static_cast<size_t>(n);
        tcp_info info{};
        socklen_t len = sizeof info;
        if (n == 0 && got > 0 && ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0)
            segs = info.tcpi_segs_in;
    }
    ::close(fd);
    return segs;
}

TEST_F(connection_close, the_last_answer_carries_the_fin) {
    write_file(dir_.path() / "www/index.html", std::string(1024, 'x'));
    cfg_.set("log", "access", "\"off\"");
    start();
    for (int i = 0; i < 20; ++i) {
        // SYN-ACK, the ACK of the request (a new connection acknowledges at once), and the
        // answer with the FIN: 3. A FIN of its own would make it 4.
        const uint32_t segs = segments_in_for_one_close_request(port_);
        ASSERT_GT(segs, 0u) << "exchange " << i << " failed";
        EXPECT_LE(segs, 3u) << "exchange " << i;
    }
}

}  // namespace
}  // namespace preforkd::test
