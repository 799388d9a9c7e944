#include "http/http_config.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <variant>

#include "http/application.hpp"

using namespace preforkd;
using namespace preforkd::http;
using namespace std::chrono_literals;

namespace {

// A table_reader over a map: enough of the contract (getters, fail, finish) to test the
// [http] table without the TOML loader.
class fake_reader : public table_reader {
  public:
    using value = std::variant<std::string, int64_t, bool, std::vector<std::string>>;
    std::map<std::string, value, std::less<>> values;
    std::optional<std::string> problem;

    const std::string& name() const override { return name_; }
    bool present() const override { return !values.empty(); }
    std::string string(std::string_view key, std::string fallback) override {
        return get<std::string>(key, std::move(fallback));
    }
    std::string path(std::string_view key, std::string fallback) override {
        return string(key, std::move(fallback));
    }
    int64_t integer(std::string_view key, int64_t fallback, int64_t min, int64_t max) override {
        int64_t v = get<int64_t>(key, fallback);
        if (v < min || v > max) fail(key, "out of range");
        return v;
    }
    bool boolean(std::string_view key, bool fallback) override { return get<bool>(key, fallback); }
    milliseconds duration(std::string_view key, milliseconds fallback) override {
        return milliseconds(get<int64_t>(key, fallback.count()));
    }
    std::vector<std::string> strings(std::string_view key,
                                     std::vector<std::string> fallback) override {
        return get<std::vector<std::string>>(key, std::move(fallback));
    }
    bool is_word(std::string_view, std::string_view) override { return false; }
    void fail(std::string_view key, std::string_view message) override {
        if (!problem)
            problem = "test.toml:1: http." + std::string(key) + " " + std::string(message);
    }
    result<void> finish() override {
        for (auto& [k, v] : values)
            if (!asked_.count(k)) fail(k, "is not a known key");
        if (problem) return error(*problem);
        return {};
    }

  private:
    template <class T>
    T get(std::string_view key, T fallback) {
        asked_.emplace(key);
        auto it = values.find(key);
        if (it == values.end()) return fallback;
        if (auto* v = std::get_if<T>(&it->second)) return *v;
        fail(key, "has the wrong type");
        return fallback;
    }
    std::string name_ = "http";
    std::set<std::string, std::less<>> asked_;
};

sockaddr_storage v4(const char* a) {
    sockaddr_storage ss{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    ::inet_pton(AF_INET, a, &sin->sin_addr);
    return ss;
}

sockaddr_storage v6(const char* a) {
    sockaddr_storage ss{};
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, a, &sin6->sin6_addr);
    return ss;
}

std::string temp_root() {
    auto p =
        std::filesystem::temp_directory_path() / ("preforkd-cfg-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p.string();
}

}  // namespace

TEST(http_settings, takes_the_documented_defaults) {
    fake_reader r;
    r.values["root"] = temp_root();
    auto s = parse_http_settings(r);
    ASSERT_TRUE(s.ok()) << s.err().message;
    const http_settings& h = **s;
    EXPECT_TRUE(h.root_fd.valid());
    EXPECT_EQ(h.index, std::vector<std::string>{"index.html"});
    EXPECT_EQ(h.keepalive_timeout, 5000ms);
    EXPECT_EQ(h.header_timeout, 10000ms);
    EXPECT_EQ(h.max_header_bytes, 8192u);
    EXPECT_EQ(h.max_keepalive_requests, 1000u);
    EXPECT_FALSE(h.serve_hidden);
    EXPECT_EQ(h.status_path, "/server-status");
    EXPECT_TRUE(h.status_allowed(v4("127.0.0.1")));
    EXPECT_TRUE(h.status_allowed(v6("::1")));
    EXPECT_FALSE(h.status_allowed(v4("127.0.0.2")));
    EXPECT_EQ(h.charset, "utf-8");
    EXPECT_EQ(h.mime.lookup("a.html"), "text/html; charset=utf-8");
}

TEST(http_settings, reads_every_key) {
    fake_reader r;
    r.values["root"] = temp_root();
    r.values["index"] = std::vector<std::string>{"index.htm", "default.html"};
    r.values["keepalive_timeout"] = int64_t{2500};
    r.values["header_timeout"] = int64_t{3000};
    r.values["max_header_bytes"] = int64_t{4096};
    r.values["max_keepalive_requests"] = int64_t{0};
    r.values["serve_hidden"] = true;
    r.values["status_path"] = std::string("/status");
    r.values["status_allow"] = std::vector<std::string>{"10.0.0.0/8"};
    auto s = parse_http_settings(r);
    ASSERT_TRUE(s.ok()) << s.err().message;
    EXPECT_EQ((*s)->index.size(), 2u);
    EXPECT_EQ((*s)->keepalive_timeout, 2500ms);
    EXPECT_EQ((*s)->header_timeout, 3000ms);
    EXPECT_EQ((*s)->max_header_bytes, 4096u);
    EXPECT_EQ((*s)->max_keepalive_requests, 0u);
    EXPECT_TRUE((*s)->serve_hidden);
    EXPECT_EQ((*s)->status_path, "/status");
    EXPECT_TRUE((*s)->status_allowed(v4("10.9.8.7")));
    EXPECT_FALSE((*s)->status_allowed(v4("127.0.0.1")));
}

TEST(http_settings, names_a_missing_root) {
    fake_reader r;
    r.values["root"] = std::string("/nonexistent/preforkd-www");
    auto s = parse_http_settings(r);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().message,
              "test.toml:1: http.root /nonexistent/preforkd-www: No such file or directory");
}

TEST(http_settings, refuses_a_bad_status_allow_entry) {
    fake_reader r;
    r.values["root"] = temp_root();
    r.values["status_allow"] = std::vector<std::string>{"127.0.0.1/32", "nonsense"};
    auto s = parse_http_settings(r);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.err().message.find("http.status_allow"), std::string::npos);
    EXPECT_NE(s.err().message.find("nonsense"), std::string::npos);
}

TEST(http_settings, refuses_a_status_path_without_a_slash) {
    fake_reader r;
    r.values["root"] = temp_root();
    r.values["status_path"] = std::string("status");
    EXPECT_FALSE(parse_http_settings(r).ok());
    fake_reader off;
    off.values["root"] = temp_root();
    off.values["status_path"] = std::string("");
    EXPECT_TRUE(parse_http_settings(off).ok());
}

TEST(http_settings, refuses_index_names_with_a_slash) {
    fake_reader r;
    r.values["root"] = temp_root();
    r.values["index"] = std::vector<std::string>{"../x.html"};
    EXPECT_FALSE(parse_http_settings(r).ok());
}

TEST(http_settings, refuses_a_zero_header_timeout) {
    fake_reader r;
    r.values["root"] = temp_root();
    r.values["header_timeout"] = int64_t{0};
    EXPECT_FALSE(parse_http_settings(r).ok());
}

TEST(http_settings, refuses_unknown_keys) {
    fake_reader r;
    r.values["root"] = temp_root();
    r.values["rooot"] = std::string("/x");
    EXPECT_FALSE(parse_http_settings(r).ok());
}

TEST(http_settings, falls_back_to_builtin_types_without_mime_types) {
    fake_reader r;
    r.values["root"] = temp_root();
    auto s = parse_http_settings(r, "/nonexistent/mime.types");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ((*s)->mime.lookup("x.css"), "text/css; charset=utf-8");
}

TEST(application, declares_the_http_table_and_parses_it) {
    application app = make_application();
    EXPECT_EQ(app.name, "preforkd");
    EXPECT_EQ(app.version, PREFORKD_VERSION);
    EXPECT_EQ(app.schema.tables, std::vector<std::string>{"http"});
    ASSERT_TRUE(app.schema.parse);
    ASSERT_TRUE(app.make_service);

    struct tables : app_tables {
        fake_reader reader;
        table_reader& table(std::string_view) override { return reader; }
    } t;
    t.reader.values["root"] = temp_root();
    auto parsed = app.schema.parse(t);
    ASSERT_TRUE(parsed.ok()) << parsed.err().message;
    config cfg;
    cfg.app = *parsed;
    EXPECT_EQ(cfg.app_settings<http_settings>().index.front(), "index.html");
}

// Issue 19 item 8: configuration errors name what the file says with its control bytes
// escaped: one line, and a NUL does not cut the message short.
TEST(http_settings, errors_escape_control_bytes) {
    {
        fake_reader r;
        r.values["root"] = temp_root();
        r.values["status_allow"] = std::vector<std::string>{"1.2.3.4\nX: 1"};
        auto s = parse_http_settings(r);
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.err().message.find('\n'), std::string::npos) << s.err().message;
        EXPECT_NE(s.err().message.find("\"1.2.3.4\\x0aX: 1\" is not an address block"),
                  std::string::npos)
            << s.err().message;
    }
    {
        fake_reader r;
        r.values["root"] = temp_root();
        r.values["status_allow"] = std::vector<std::string>{std::string("10.0.0.0/8\0tail", 15)};
        auto s = parse_http_settings(r);
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.err().message.find('\0'), std::string::npos);
        EXPECT_NE(s.err().message.find("10.0.0.0/8\\x00tail"), std::string::npos)
            << s.err().message;
    }
    {
        fake_reader r;
        r.values["root"] = temp_root();
        r.values["index"] = std::vector<std::string>{"a/\r\nb"};
        auto s = parse_http_settings(r);
        ASSERT_FALSE(s.ok());
        EXPECT_NE(s.err().message.find("\"a/\\x0d\\x0ab\" must be a plain file name"),
                  std::string::npos)
            << s.err().message;
    }
    {
        fake_reader r;
        r.values["root"] = std::string("/nonexistent/\x1b[31mred");
        auto s = parse_http_settings(r);
        ASSERT_FALSE(s.ok());
        EXPECT_NE(s.err().message.find("/nonexistent/\\x1b[31mred: "), std::string::npos)
            << s.err().message;
    }
}

// Issue 16 item 7: http.charset.
TEST(http_settings, charset_can_be_changed_or_turned_off) {
    fake_reader other;
    other.values["root"] = temp_root();
    other.values["charset"] = std::string("iso-8859-1");
    auto s = parse_http_settings(other);
    ASSERT_TRUE(s.ok()) << s.err().message;
    EXPECT_EQ((*s)->mime.lookup("a.css"), "text/css; charset=iso-8859-1");
    fake_reader off;
    off.values["root"] = temp_root();
    off.values["charset"] = std::string("");
    auto o = parse_http_settings(off);
    ASSERT_TRUE(o.ok()) << o.err().message;
    EXPECT_EQ((*o)->mime.lookup("a.css"), "text/css");
}

TEST(http_settings, refuses_a_charset_that_is_not_a_token) {
    for (const char* bad : {"utf-8; x=y", "utf 8", "utf-8\r\nX-Evil: 1"}) {
        fake_reader r;
        r.values["root"] = temp_root();
        r.values["charset"] = std::string(bad);
        auto s = parse_http_settings(r);
        ASSERT_FALSE(s.ok()) << bad;
        EXPECT_EQ(s.err().message.rfind("test.toml:1: http.charset must be", 0), 0u)
            << s.err().message;
    }
}
