// Real clients against the real binary serving the demo site (etc/www): curl, Python's
// http.client and headless Chromium. Each test skips when its client is not installed
// (tests/run_all.sh installs all three, so CI runs them).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/fixture.hpp"
#include "integration/http_util.hpp"

namespace preforkd::test {
namespace {

struct command_result {
    int status = -1;  // exit status, 128 + signal, or -1 if it had to be killed
    std::string out, err;
};

// Runs argv[0] (a path) in a process group of its own, so that on timeout the whole group
// (Chromium's helpers too) is killed; bounded by `timeout`.
command_result run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           const std::vector<std::string>& env = {}) {
    temp_dir tmp;
    const fs::path out = tmp.path() / "out", err = tmp.path() / "err";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::setpgid(0, 0);
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ::dup2(in, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (const auto& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    command_result r;
    if (pid < 0) return r;
    ::setpgid(pid, pid);  // also here: no race with the child's own call
    int status = 0;
    bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
    // Whatever the group left behind goes too (a browser's helpers outliving it).
    ::kill(-pid, SIGKILL);
    if (exited)
        r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    else
        ::waitpid(pid, &status, 0);
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

class real_clients : public server_test {
  protected:
    // The demo site, copied so that workers running as nobody can read it wherever the
    // source tree lives.
    void start_demo() {
        const fs::path demo = fs::path(PREFORKD_SOURCE_DIR) / "etc/www";
        fs::create_directories(dir_.path() / "www");
        for (const char* f : {"index.html", "style.css", "logo.svg"})
            fs::copy_file(demo / f, dir_.path() / "www" / f, fs::copy_options::overwrite_existing);
        start();
    }
    std::string url(const std::string& path = "/") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::string demo_file(const char* name) const { return read_file(dir_.path() / "www" / name); }

    // Lines of the access log for `path` answered `status` by a client whose User-Agent
    // contains `agent`.
    size_t logged(const std::string& path, int status, const std::string& agent) const {
        size_t n = 0;
        for (const auto& l : access_log_lines(*srv_)) {
            auto e = parse_access_line(l);
            if (e && e->request == "GET " + path + " HTTP/1.1" && e->status == status &&
                e->user_agent.find(agent) != std::string::npos)
                ++n;
        }
        return n;
    }
};

TEST_F(real_clients, curl_gets_the_site_over_one_connection) {
    const std::string curl = find_program("curl");
    if (curl.empty()) GTEST_SKIP() << "curl is not installed";
    start_demo();
    auto simple = run_command({curl, "-sS", "--fail", "--max-time", "10", url()}, 20s);
    ASSERT_EQ(simple.status, 0) << simple.err;
    EXPECT_EQ(simple.out, demo_file("index.html"));

    // Three URLs in one run: curl reuses the connection (keep-alive) for the second and third.
    temp_dir tmp;
    auto r = run_command({curl, "-sS", "--fail", "--max-time", "10", "-w",
                          "%{http_code} %{content_type} %{num_connects} %{size_download}\\n", "-o",
                          (tmp.path() / "a").string(), url("/"), "-o", (tmp.path() / "b").string(),
                          url("/style.css"), "-o", (tmp.path() / "c").string(), url("/logo.svg")},
                         20s);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "200 text/html; charset=utf-8 1 " +
                         std::to_string(demo_file("index.html").size()) +
                         "\n200 text/css; charset=utf-8 0 " +
                         std::to_string(demo_file("style.css").size()) +
                         "\n200 image/svg+xml; charset=utf-8 0 " +
                         std::to_string(demo_file("logo.svg").size()) + "\n");
    EXPECT_EQ(read_file(tmp.path() / "b"), demo_file("style.css"));
    EXPECT_EQ(read_file(tmp.path() / "c"), demo_file("logo.svg"));

    // HEAD, a range, and a missing file (--fail: exit 22).
    auto head = run_command({curl, "-sS", "--fail", "--max-time", "10", "-I", url("/")}, 20s);
    ASSERT_EQ(head.status, 0) << head.err;
    EXPECT_NE(head.out.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << head.out;
    EXPECT_NE(head.out.find("Content-Length: " + std::to_string(demo_file("index.html").size())),
              std::string::npos)
        << head.out;
    auto range =
        run_command({curl, "-sS", "--fail", "--max-time", "10", "-r", "0-14", url("/")}, 20s);
    ASSERT_EQ(range.status, 0) << range.err;
    EXPECT_EQ(range.out, "<!DOCTYPE html>");
    auto missing = run_command({curl, "-sS", "--fail", "--max-time", "10", url("/nope")}, 20s);
    EXPECT_EQ(missing.status, 22);
    EXPECT_EQ(logged("/style.css", 200, "curl/"), 1u);
}

TEST_F(real_clients, python_http_client_gets_the_page_css_and_image_on_one_connection) {
    const std::string python = find_program("python3");
    if (python.empty()) GTEST_SKIP() << "python3 is not installed";
    start_demo();
    const std::string script = R"py(
import http.client, sys
port, root = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
sock = None
for path, name, ctype in [("/", "index.html", "text/html"), ("/style.css", "style.css", "text/css"),
                          ("/logo.svg", "logo.svg", "image/svg+xml")]:
    c.request("GET", path, headers={"User-Agent": "python-http-client-test"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status)
    assert r.getheader("Content-Type").startswith(ctype), (path, r.getheader("Content-Type"))
    assert body == open(root + "/" + name, "rb").read(), path
    assert sock is None or c.sock is sock, "a new connection for " + path
    sock = c.sock
    etag = r.getheader("ETag")
c.request("GET", "/logo.svg", headers={"If-None-Match": etag, "User-Agent": "python-http-client-test"})
r = c.getresponse()
r.read()
assert r.status == 304, r.status
assert c.sock is sock
print("ok")
)py";
    auto r = run_command(
        {python, "-c", script, std::to_string(port_), (dir_.path() / "www").string()}, 30s);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "ok\n");
    for (const char* p : {"/", "/style.css", "/logo.svg"})
        EXPECT_EQ(logged(p, 200, "python-http-client-test"), 1u) << p;
    EXPECT_EQ(logged("/logo.svg", 304, "python-http-client-test"), 1u);
}

TEST_F(real_clients, headless_chromium_loads_the_demo_page_with_its_css_and_image) {
    std::string chromium = find_program("chromium");
    if (chromium.empty()) chromium = find_program("chromium-browser");
    if (chromium.empty()) GTEST_SKIP() << "chromium is not installed";
    start_demo();
    temp_dir profile;  // a new, empty profile: nothing cached, nothing synced
    // --no-sandbox: its sandbox needs user namespaces, which root and containers often
    // lack; the page it loads is our own.
    std::vector<std::string> args = {chromium,
                                     "--headless",
                                     "--no-sandbox",
                                     "--disable-gpu",
                                     "--disable-quic",
                                     "--no-first-run",
                                     "--disable-background-networking",
                                     "--disable-component-update",
                                     "--disable-sync",
                                     "--disable-dev-shm-usage",
                                     "--user-data-dir=" + profile.path().string(),
                                     "--dump-dom",
                                     url("/")};
    auto r = run_command(args, 90s, {"HOME=" + profile.path().string()});
    ASSERT_EQ(r.status, 0) << r.err.substr(0, 4000);
    // --dump-dom prints the DOM after the load event, which waits for the stylesheet and
    // the image.
    EXPECT_NE(r.out.find("<title>preforkd is serving</title>"), std::string::npos)
        << r.out.substr(0, 2000);
    EXPECT_NE(r.out.find("<img src=\"logo.svg\""), std::string::npos);
    EXPECT_EQ(logged("/", 200, "Chrome/"), 1u) << read_file(srv_->access_log_path());
    EXPECT_GE(logged("/style.css", 200, "Chrome/"), 1u) << read_file(srv_->access_log_path());
    EXPECT_GE(logged("/logo.svg", 200, "Chrome/"), 1u) << read_file(srv_->access_log_path());
}

}  // namespace
}  // namespace preforkd::test
