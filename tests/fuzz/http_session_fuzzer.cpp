// libFuzzer target that drives whole connections through the HTTP session, over the
// in-memory transport (as h2o's fuzz/driver.cc does), against a small docroot.
//
// Input: the first byte says how many of the next bytes are a "plan" (how to cut the rest
// into pieces, and how much the client's socket takes per turn); the rest is what the client
// sends, followed by its FIN. Each input is played twice: in one piece, then cut as the plan
// says, with short writes and a full socket buffer at chosen points.
// Checks, beyond "no crash, no leak" (ASan, LeakSanitizer):
// - the answers are the same however the input is split (Date values aside);
// - the output is a clean sequence of responses: each head whole, each body exactly its
//   Content-Length (never more body bytes than the file has), the file bodies of the right
//   size;
// - the session ends once the client's FIN is in and the answers are out.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <preforkd/config.hpp>
#include <preforkd/log.hpp>
#include <preforkd/scoreboard.hpp>
#include <preforkd/service.hpp>
#include <set>
#include <string>
#include <string_view>

#include "../unit/http/memory_transport.hpp"
#include "http/health.hpp"
#include "http/http_config.hpp"
#include "http/response.hpp"
#include "http/session.hpp"
#include "worker/context_access.hpp"

using namespace preforkd;
using namespace preforkd::http;
using preforkd::testing::memory_transport;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

constexpr int64_t start_ms = 1'000'000;

struct world {
    std::filesystem::path base;
    std::shared_ptr<http_settings> settings;
    config cfg;
    logger log{"worker", log_level::crit};
    scoreboard board;
    std::unique_ptr<worker_context> ctx;
    std::unique_ptr<service> svc;
    std::set<uint64_t> file_sizes;  // what a 200 may promise
    uint64_t largest = 0;

    void write_file(const std::string& rel, const std::string& content) {
        std::ofstream(base / "www" / rel, std::ios::binary | std::ios::trunc) << content;
        file_sizes.insert(content.size());
        largest = std::max<uint64_t>(largest, content.size());
    }

    world() {
        namespace fs = std::filesystem;
        base = fs::temp_directory_path() / ("preforkd-session-fuzz-" + std::to_string(::getpid()));
        fs::remove_all(base);
        fs::create_directories(base / "www" / "docs");
        fs::create_directories(base / "www" / "empty");
        write_file("index.html", "<!DOCTYPE html><h1>hello</h1>\n");
        write_file("a.txt", std::string(100, 'a'));
        write_file("zero", "");
        // Larger than file_cache::memory_limit: sent with sendfile.
        std::string big(70000, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
        write_file("big.bin", big);
        write_file("docs/index.html", "docs index\n");
        write_file(".hidden", "secret");
        // Precompressed sidecars (the default http.precompressed): Accept-Encoding picks them.
        write_file("index.html.br", "br bytes");
        write_file("index.html.gz", "gzip bytes");
        write_file("big.bin.zst", big.substr(0, 40000));

        settings = std::make_shared<http_settings>();
        settings->root = (base / "www").string();
        settings->root_fd.reset(::open(settings->root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        check(settings->root_fd.valid());
        settings->mime = mime_table::builtin();
        settings->max_header_bytes = 2048;
        // The status page answers 403 to everyone: its body (uptime, heartbeats) changes
        // with the clock, which would make the two plays differ.
        settings->status_allow.clear();
        // The health check (http.health_path, on by default) answers 200 with its own small
        // body, not a file's: a 200 may promise that length too.
        file_sizes.insert(health_check(false).body.size());
        cfg.app = settings;
        auto b = scoreboard::create(1);
        check(b.ok());
        board = std::move(*b);
        board.prepare(0, 1, 0);
        ctx = std::make_unique<worker_context>(cfg, log, board, 0, -1);
        preforkd::detail::context_access::set_now_ms(*ctx, start_ms);
        svc = make_http_service(*ctx);
        check(svc != nullptr);
    }
};

world& the_world() {
    static world* w = [] {
        auto* p = new world();
        std::atexit([] { std::filesystem::remove_all(the_world().base); });
        return p;
    }();
    return *w;
}

sockaddr_storage loopback_peer() {
    sockaddr_storage ss{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ss;
}

// The plan's bytes, cycled; 0 when there is no plan.
struct plan_reader {
    std::string_view plan;
    size_t at = 0;
    uint8_t next() noexcept {
        return plan.empty() ? 0 : static_cast<uint8_t>(plan[at++ % plan.size()]);
    }
};

// Plays one connection; returns everything the server wrote.
std::string play(std::string_view input, std::string_view plan, bool split) {
    world& w = the_world();
    preforkd::detail::context_access::set_now_ms(*w.ctx, start_ms);
    memory_transport mt;
    accepted_connection c;
    c.io = &mt;
    c.peer = loopback_peer();
    c.peer_len = sizeof(sockaddr_in);
    std::unique_ptr<session> s = w.svc->open(std::move(c));
    check(s != nullptr);
    plan_reader p{plan};
    std::string out;
    size_t fed = 0;
    bool open = true;
    for (int turn = 0; open && fed < input.size() && turn < 100000; ++turn) {
        size_t n = input.size() - fed;
        if (split) {
            const uint8_t b = p.next();
            n = std::min(n, b < 200 ? size_t{1} + b % 16 : size_t{1} + (b - 200) * 97u);
            const uint8_t wnd = p.next();
            mt.window = wnd < 128 ? std::numeric_limits<size_t>::max() : size_t{wnd} * 31u;
            if (wnd % 3 == 0) mt.writes.push_back(memory_transport::at_most(1 + wnd % 50));
        }
        mt.feed(input.substr(fed, n));
        fed += n;
        uint32_t events = EPOLLIN | EPOLLOUT;
        if (fed == input.size()) {
            mt.close_input();
            events |= EPOLLRDHUP;
        }
        open = s->on_io(events);
        out += mt.take_output();
    }
    // All of it is in, the FIN too: with room to write, the session must finish and close.
    mt.window = std::numeric_limits<size_t>::max();
    mt.writes.clear();
    if (input.empty()) {
        mt.close_input();
        open = s->on_io(EPOLLIN | EPOLLOUT | EPOLLRDHUP);
        out += mt.take_output();
    }
    for (int turn = 0; open && turn < 64; ++turn) {
        if (s->deadline_ms() != 0 && s->deadline_ms() <= w.ctx->now_ms())
            open = s->on_deadline();  // a long write that yielded
        else
            open = s->on_io(EPOLLIN | EPOLLOUT | EPOLLRDHUP);
        out += mt.take_output();
    }
    check(!open);
    return out;
}

std::string without_date(std::string s) {
    for (size_t at = s.find("\r\nDate: "); at != std::string::npos;
         at = s.find("\r\nDate: ", at + 2))
        s.erase(at + 8, http_date_length);
    return s;
}

size_t content_length(std::string_view head) {
    const size_t at = head.find("\r\nContent-Length: ");
    check(at != std::string_view::npos);
    size_t v = 0;
    for (size_t i = at + 18; i < head.size() && head[i] >= '0' && head[i] <= '9'; ++i)
        v = v * 10 + static_cast<size_t>(head[i] - '0');
    return v;
}

// The output is responses back to back: a whole head, then exactly Content-Length bytes of
// body (none for HEAD and 304, told by the next response starting at once).
void check_stream(std::string_view out) {
    const world& w = the_world();
    while (!out.empty()) {
        check(out.substr(0, 9) == "HTTP/1.1 ");
        const size_t end = out.find("\r\n\r\n");
        check(end != std::string_view::npos);
        const std::string_view head = out.substr(0, end + 2);
        const int status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
        out.remove_prefix(end + 4);
        if (status == 304) continue;  // no Content-Length, no body
        const size_t length = content_length(head);
        if (status == 200) check(w.file_sizes.count(length) != 0);
        if (status == 206) check(length <= w.largest);
        if (status >= 300 && status != 304) check(length == error_body_length(status));
        if (out.empty() || out.substr(0, 9) == "HTTP/1.1 ") continue;  // HEAD, 304, empty
        check(out.size() >= length);  // nothing is cut: the transport never fails
        out.remove_prefix(length);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t plan_len = std::min<size_t>(data[0] % 64, size - 1);
    const std::string_view plan(reinterpret_cast<const char*>(data) + 1, plan_len);
    const std::string_view input(reinterpret_cast<const char*>(data) + 1 + plan_len,
                                 size - 1 - plan_len);
    if (input.size() > 64 * 1024) return 0;

    const std::string whole = play(input, plan, false);
    check_stream(whole);
    const std::string pieces = play(input, plan, true);
    check_stream(pieces);
    check(without_date(whole) == without_date(pieces));
    return 0;
}
