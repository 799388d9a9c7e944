#include "http/mime.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <preforkd/unique_fd.hpp>

namespace preforkd::http {

namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

}  // namespace

void mime_table::add(std::string_view type, std::string_view ext) {
    std::string key(ext);
    for (char& c : key) c = lower(c);
    by_ext_.try_emplace(std::move(key), type);
}

mime_table mime_table::builtin() {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 26> types{{
        {"html", "text/html"},      {"htm", "text/html"},
        {"css", "text/css"},        {"js", "text/javascript"},
        {"mjs", "text/javascript"}, {"json", "application/json"},
        {"txt", "text/plain"},      {"xml", "application/xml"},
        {"png", "image/png"},       {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},     {"gif", "image/gif"},
        {"webp", "image/webp"},     {"avif", "image/avif"},
        {"svg", "image/svg+xml"},   {"ico", "image/vnd.microsoft.icon"},
        {"pdf", "application/pdf"}, {"wasm", "application/wasm"},
        {"woff", "font/woff"},      {"woff2", "font/woff2"},
        {"ttf", "font/ttf"},        {"otf", "font/otf"},
        {"mp4", "video/mp4"},       {"webm", "video/webm"},
        {"mp3", "audio/mpeg"},      {"zip", "application/zip"},
    }};
    mime_table t;
    for (auto [ext, type] : types) t.add(type, ext);
    return t;
}

mime_table mime_table::parse(std::string_view text) {
    mime_table t;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (size_t hash = line.find('#'); hash != std::string_view::npos)
            line = line.substr(0, hash);

        std::string_view type;
        while (!line.empty()) {
            while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
            size_t end = 0;
            while (end < line.size() && !is_space(line[end])) ++end;
            if (end == 0) break;
            std::string_view word = line.substr(0, end);
            line.remove_prefix(end);
            if (type.empty()) {
                if (word.find('/') == std::string_view::npos) break;  // not a type: skip line
                type = word;
            } else {
                t.add(type, word);
            }
        }
    }
    return t;
}

mime_table mime_table::load(const char* path) {
    unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return builtin();
    std::string text;
    std::array<char, 16384> buf;
    for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return builtin();
        if (n == 0) break;
        text.append(buf.data(), static_cast<size_t>(n));
        if (text.size() > (16u << 20)) return builtin();  // not a mime.types file
    }
    mime_table t = parse(text);
    return t.size() == 0 ? builtin() : t;
}

bool mime_table::is_text_type(std::string_view type) noexcept {
    const auto ends_with = [&](std::string_view tail) {
        return type.size() >= tail.size() && type.substr(type.size() - tail.size()) == tail;
    };
    return type.substr(0, 5) == "text/" || type == "application/javascript" ||
           type == "application/json" || type == "application/xml" || ends_with("+xml") ||
           ends_with("+json");
}

void mime_table::set_charset(std::string_view charset) {
    if (charset.empty()) return;
    for (auto& [ext, type] : by_ext_) {
        if (type.find(';') != std::string::npos || !is_text_type(type)) continue;
        type.append("; charset=");
        type.append(charset);
    }
}

std::string_view mime_table::lookup(std::string_view file_name) const noexcept {
    size_t slash = file_name.rfind('/');
    if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
    size_t dot = file_name.rfind('.');
    if (dot == std::string_view::npos || dot + 1 == file_name.size()) return default_mime_type;
    std::string_view ext = file_name.substr(dot + 1);
    // Extensions are short: lower-case into a stack buffer, no allocation per lookup.
    std::array<char, 32> key{};
    if (ext.size() > key.size()) return default_mime_type;
    for (size_t i = 0; i < ext.size(); ++i) key[i] = lower(ext[i]);
    try {
        auto it = by_ext_.find(std::string(key.data(), ext.size()));
        return it == by_ext_.end() ? default_mime_type : std::string_view(it->second);
    } catch (...) {
        return default_mime_type;
    }
}

}  // namespace preforkd::http
