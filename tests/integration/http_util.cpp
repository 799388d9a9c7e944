#include "integration/http_util.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string_view>

namespace preforkd::test {

std::optional<access_entry> parse_access_line(const std::string& line) {
    // host ident authuser [date] "request" status bytes "referer" "user-agent"; quoted
    // fields escape '"' and '\' with a backslash and other bytes as \xHH.
    static const std::regex clf(
        R"re(^(\S+) - - \[(\d{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] )re"
        R"re("((?:[^"\\]|\\.)*)" ([1-5]\d\d) (-|\d+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$)re");
    std::smatch m;
    if (!std::regex_match(line, m, clf)) return std::nullopt;
    access_entry e;
    e.client = m[1];
    e.time = m[2];
    e.request = m[3];
    e.status = std::stoi(m[4]);
    e.bytes = m[5];
    e.referer = m[6];
    e.user_agent = m[7];
    return e;
}

std::vector<std::string> access_log_lines(const server& srv) {
    std::vector<std::string> out;
    std::string text = read_file(srv.access_log_path());
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) {
            out.push_back(text.substr(start) + "<no newline>");
            break;
        }
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

size_t count_access_lines(const server& srv, const std::string& needle) {
    size_t n = 0;
    for (const auto& l : access_log_lines(srv))
        if (l.find(needle) != std::string::npos) ++n;
    return n;
}

raw_result send_raw(uint16_t port, const std::string& bytes, bool head,
                    std::chrono::milliseconds quiet) {
    raw_result r;
    http_client c(port, quiet);
    if (!c.connected() || !c.send(bytes)) return r;
    // Bounded: a server answering forever would still stop here.
    for (int i = 0; i < 64; ++i) {
        auto resp = c.read_response(head);
        if (!resp) break;
        r.responses.push_back(std::move(*resp));
    }
    r.closed = c.closed_by_peer(200ms);
    if (r.closed) r.trailing = c.read_all();
    return r;
}

// ---- JSON ------------------------------------------------------------------------------

const json_value* json_value::get(const std::string& key) const {
    auto it = obj.find(key);
    return k == kind::object && it != obj.end() ? &it->second : nullptr;
}

namespace {

class json_reader {
  public:
    explicit json_reader(const std::string& s) : s_(s) {}

    std::optional<json_value> document() {
        auto v = value(0);
        skip_ws();
        if (!v || pos_ != s_.size()) return std::nullopt;
        return v;
    }

  private:
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
            ++pos_;
    }
    bool eat(char c) {
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool literal(const char* word) {
        std::string w(word);
        if (s_.compare(pos_, w.size(), w) != 0) return false;
        pos_ += w.size();
        return true;
    }

    std::optional<json_value> value(int depth) {
        if (depth > 64) return std::nullopt;
        skip_ws();
        if (pos_ >= s_.size()) return std::nullopt;
        json_value v;
        char c = s_[pos_];
        if (c == '{') {
            ++pos_;
            v.k = json_value::kind::object;
            if (eat('}')) return v;
            do {
                skip_ws();
                auto key = string();
                if (!key || !eat(':')) return std::nullopt;
                auto member = value(depth + 1);
                if (!member) return std::nullopt;
                v.obj[*key] = std::move(*member);
            } while (eat(','));
            if (!eat('}')) return std::nullopt;
            return v;
        }
        if (c == '[') {
            ++pos_;
            v.k = json_value::kind::array;
            if (eat(']')) return v;
            do {
                auto item = value(depth + 1);
                if (!item) return std::nullopt;
                v.arr.push_back(std::move(*item));
            } while (eat(','));
            if (!eat(']')) return std::nullopt;
            return v;
        }
        if (c == '"') {
            auto s = string();
            if (!s) return std::nullopt;
            v.k = json_value::kind::string;
            v.str = std::move(*s);
            return v;
        }
        if (literal("true")) {
            v.k = json_value::kind::boolean;
            v.b = true;
            return v;
        }
        if (literal("false")) {
            v.k = json_value::kind::boolean;
            return v;
        }
        if (literal("null")) return v;
        return number();
    }

    std::optional<std::string> string() {
        if (pos_ >= s_.size() || s_[pos_] != '"') return std::nullopt;
        ++pos_;
        std::string out;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (pos_ >= s_.size()) return std::nullopt;
            char e = s_[pos_++];
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out.push_back(e);
                    break;
                case 'b':
                case 'f':
                case 'n':
                case 'r':
                case 't':
                    out.push_back(' ');
                    break;
                case 'u':
                    if (pos_ + 4 > s_.size()) return std::nullopt;
                    for (int i = 0; i < 4; ++i)
                        if (!std::isxdigit(static_cast<unsigned char>(s_[pos_ + i])))
                            return std::nullopt;
                    pos_ += 4;
                    out.push_back('?');  // the checks here never need the code point
                    break;
                default:
                    return std::nullopt;
            }
        }
        return std::nullopt;
    }

    std::optional<json_value> number() {
        // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
        static const std::regex num(R"(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?)");
        size_t end = pos_;
        while (end < s_.size() &&
               std::string_view("+-.eE0123456789").find(s_[end]) != std::string_view::npos)
            ++end;
        std::string text = s_.substr(pos_, end - pos_);
        if (text.empty() || !std::regex_match(text, num)) return std::nullopt;
        pos_ = end;
        json_value v;
        v.k = json_value::kind::number;
        v.num = std::strtod(text.c_str(), nullptr);
        return v;
    }

    const std::string& s_;
    size_t pos_ = 0;
};

}  // namespace

std::optional<json_value> parse_json(const std::string& text) {
    return json_reader(text).document();
}

std::string find_program(const std::string& name) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    path += ":/usr/local/bin:/usr/bin:/bin";
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        if (dir.empty()) continue;
        fs::path p = fs::path(dir) / name;
        if (::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p)) return p.string();
    }
    return {};
}

}  // namespace preforkd::test
