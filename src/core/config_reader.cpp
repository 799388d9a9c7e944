// table_reader over toml++: typed getters that remember the first problem with its line.
#include "core/config_reader.hpp"

#include <algorithm>
#include <limits>
#include <preforkd/detail/text.hpp>
#include <utility>

namespace preforkd::detail {

error duration_too_large(const std::string& quoted_text) {
    return error(quoted_text + " is too large (at most 8760h, one year)");
}

std::string format_duration(milliseconds d) {
    int64_t ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

uint32_t line_of(const toml::node& node, uint32_t fallback) {
    uint32_t line = node.source().begin.line;
    return line > 0 ? line : fallback;
}

toml_table_reader::toml_table_reader(std::string name, const toml::table* table, std::string file,
                                     std::filesystem::path base_dir)
    : name_(std::move(name)),
      table_(table),
      file_(std::move(file)),
      base_dir_(std::move(base_dir)) {}

const toml::node* toml_table_reader::find(std::string_view key) const {
    return table_ ? table_->get(key) : nullptr;
}

const toml::node* toml_table_reader::take(std::string_view key) {
    const toml::node* node = find(key);
    if (!node) return nullptr;
    read_.emplace(key);
    // After the first problem every getter gives its fallback: the load fails anyway, and
    // cross-key checks must not run on half-read values.
    return *error_ ? nullptr : node;
}

uint32_t toml_table_reader::line_for(std::string_view key) const {
    uint32_t table_line = table_ ? line_of(*table_, 1) : 1;
    if (const toml::node* node = find(key)) return line_of(*node, table_line);
    return table_line;
}

void toml_table_reader::fail(std::string_view key, std::string_view message) {
    if (*error_) return;
    std::string where = file_ + ':' + std::to_string(line_for(key)) + ": " + name_;
    if (!key.empty()) where += '.' + hex_escaped(key);
    *error_ = error(where + ' ' + std::string(message));
}

void toml_table_reader::fail_at(uint32_t line, std::string_view key, std::string_view message) {
    if (*error_) return;
    *error_ = error(file_ + ':' + std::to_string(line) + ": " + name_ + '.' + std::string(key) +
                    ' ' + std::string(message));
}

void toml_table_reader::wrong_type(std::string_view key, const toml::node& node,
                                   std::string_view wanted) {
    fail(key, "must be " + std::string(wanted) + ", not " + std::string(type_name(node)));
}

std::string toml_table_reader::string(std::string_view key, std::string fallback) {
    const toml::node* node = take(key);
    if (!node) return fallback;
    if (const auto* s = node->as_string()) return s->get();
    wrong_type(key, *node, "a string");
    return fallback;
}

std::string toml_table_reader::path(std::string_view key, std::string fallback) {
    const toml::node* node = take(key);
    if (!node) return fallback;
    const auto* s = node->as_string();
    if (!s) {
        wrong_type(key, *node, "a string");
        return fallback;
    }
    const std::string& text = s->get();
    if (text.empty()) return text;
    if (text.find('\0') != std::string::npos) {
        // The kernel would stop at the NUL and open a different file than the one written.
        fail(key, "contains a NUL byte");
        return fallback;
    }
    std::filesystem::path p(text);
    if (p.is_relative()) p = base_dir_ / p;
    return p.lexically_normal().string();
}

int64_t toml_table_reader::integer(std::string_view key, int64_t fallback, int64_t min,
                                   int64_t max) {
    const toml::node* node = take(key);
    if (!node) return fallback;
    const auto* i = node->as_integer();
    if (!i) {
        wrong_type(key, *node, "an integer");
        return fallback;
    }
    int64_t v = i->get();
    if (v < min || v > max) {
        std::string range;
        if (min == std::numeric_limits<int64_t>::min()) {
            range = "<= " + std::to_string(max);
        } else if (max == std::numeric_limits<int64_t>::max()) {
            range = ">= " + std::to_string(min);
        } else {
            range = "between " + std::to_string(min) + " and " + std::to_string(max);
        }
        fail(key, '(' + std::to_string(v) + ") must be " + range);
        return fallback;
    }
    return v;
}

bool toml_table_reader::boolean(std::string_view key, bool fallback) {
    const toml::node* node = take(key);
    if (!node) return fallback;
    if (const auto* b = node->as_boolean()) return b->get();
    wrong_type(key, *node, "a boolean (true or false)");
    return fallback;
}

milliseconds toml_table_reader::duration(std::string_view key, milliseconds fallback) {
    const toml::node* node = take(key);
    if (!node) return fallback;
    if (const auto* i = node->as_integer()) {
        int64_t v = i->get();
        if (v < 0) {
            fail(key, '(' + std::to_string(v) + ") must be >= 0");
            return fallback;
        }
        if (v > max_duration_ms / 1000) {
            fail(key, duration_too_large('(' + std::to_string(v) + ')').message);
            return fallback;
        }
        return milliseconds(v * 1000);
    }
    if (const auto* s = node->as_string()) {
        auto d = parse_duration(s->get());
        if (!d) {
            fail(key, d.err().message);
            return fallback;
        }
        return *d;
    }
    wrong_type(key, *node, R"(a duration (seconds, or a string like "250ms", "5s", "2m"))");
    return fallback;
}

std::vector<std::string> toml_table_reader::strings(std::string_view key,
                                                    std::vector<std::string> fallback) {
    const toml::node* node = take(key);
    if (!node) return fallback;
    const auto* arr = node->as_array();
    if (!arr) {
        wrong_type(key, *node, "an array of strings");
        return fallback;
    }
    std::vector<std::string> out;
    out.reserve(arr->size());
    for (size_t i = 0; i < arr->size(); ++i) {
        const toml::node& item = *arr->get(i);
        const auto* s = item.as_string();
        if (!s) {
            fail(key, "must be an array of strings (item " + std::to_string(i + 1) + " is " +
                          std::string(type_name(item)) + ")");
            return fallback;
        }
        out.push_back(s->get());
    }
    return out;
}

bool toml_table_reader::is_word(std::string_view key, std::string_view word) {
    const toml::node* node = take(key);
    if (!node) return false;
    const auto* s = node->as_string();
    return s && s->get() == word;
}

table_reader* toml_table_reader::table(std::string_view key) {
    const toml::node* node = take(key);
    if (!node) return nullptr;
    const auto* t = node->as_table();
    if (!t) {
        wrong_type(key, *node, "a table");
        return nullptr;
    }
    std::string child_name = name_ + '.' + hex_escaped(key);
    for (const auto& c : children_)
        if (c->name_ == child_name) return c.get();
    auto child = std::make_unique<toml_table_reader>(std::move(child_name), t, file_, base_dir_);
    child->error_ = error_;
    children_.push_back(std::move(child));
    return children_.back().get();
}

std::vector<table_reader*> toml_table_reader::tables(std::string_view key) {
    std::vector<table_reader*> out;
    const toml::node* node = take(key);
    if (!node) return out;
    const auto* arr = node->as_array();
    if (!arr || !arr->is_array_of_tables()) {
        wrong_type(key, *node, "an array of tables");
        return out;
    }
    const std::string prefix = name_ + '.' + hex_escaped(key) + '[';
    for (size_t i = 0; i < arr->size(); ++i) {
        std::string child_name = prefix + std::to_string(i) + ']';
        toml_table_reader* found = nullptr;
        for (const auto& c : children_)
            if (c->name_ == child_name) found = c.get();
        if (!found) {
            auto child = std::make_unique<toml_table_reader>(
                std::move(child_name), arr->get(i)->as_table(), file_, base_dir_);
            child->error_ = error_;
            children_.push_back(std::move(child));
            found = children_.back().get();
        }
        out.push_back(found);
    }
    return out;
}

std::vector<std::string> toml_table_reader::keys() const {
    std::vector<std::pair<uint32_t, std::string>> lines;
    if (table_) {
        for (const auto& [k, v] : *table_) lines.emplace_back(line_of(v, 0), std::string(k.str()));
    }
    // toml++ keeps a table sorted by name; the file's order is what a reader expects.
    std::stable_sort(lines.begin(), lines.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    out.reserve(lines.size());
    for (auto& l : lines) out.push_back(std::move(l.second));
    return out;
}

result<void> toml_table_reader::finish() {
    if (*error_) return **error_;
    if (!table_) return {};
    if (auto r = unknown_keys(); !r) return r;
    for (const auto& c : children_)
        if (auto r = c->finish(); !r) return r;
    return {};
}

result<void> toml_table_reader::unknown_keys() const {
    // Report the unread key nearest the top: the map is sorted by name, not by line.
    const toml::key* first = nullptr;
    uint32_t first_line = 0;
    for (const auto& [k, v] : *table_) {
        if (read_.count(k.str())) continue;
        uint32_t line = line_of(v, line_of(*table_, 1));
        if (!first || line < first_line) {
            first = &k;
            first_line = line;
        }
    }
    if (!first) return {};
    return error(file_ + ':' + std::to_string(first_line) + ": unknown key " + name_ + '.' +
                 hex_escaped(first->str()));
}

}  // namespace preforkd::detail
