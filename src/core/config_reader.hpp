// The toml++ side of the config: table_reader over a toml::table. Private to src/core, so
// toml++ never reaches a public header.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <preforkd/config.hpp>
#include <preforkd/detail/text.hpp>
#include <preforkd/result.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::detail {

// The longest duration accepted: one year. Callers add durations to steady_clock time
// points (nanoseconds in an int64); a cap far below that range keeps every sum exact.
inline constexpr int64_t max_duration_ms = 365LL * 24 * 3600 * 1000;

error duration_too_large(const std::string& quoted_text);

// "250ms", "5s", "2m": the shortest exact spelling, for messages.
std::string format_duration(milliseconds d);

// "string", "integer", "table"... for "must be an integer, not a string".
std::string_view type_name(const toml::node& node);

// 1-based line where `node` starts, or `fallback` when toml++ does not know.
uint32_t line_of(const toml::node& node, uint32_t fallback);

class toml_table_reader final : public table_reader {
  public:
    // `table` may be null (the file has no such table). `file` is the name used in
    // messages; `base_dir` is what relative paths are resolved against.
    toml_table_reader(std::string name, const toml::table* table, std::string file,
                      std::filesystem::path base_dir);

    const std::string& name() const override { return name_; }
    bool present() const override { return table_ != nullptr; }

    std::string string(std::string_view key, std::string fallback) override;
    std::string path(std::string_view key, std::string fallback) override;
    int64_t integer(std::string_view key, int64_t fallback, int64_t min, int64_t max) override;
    bool boolean(std::string_view key, bool fallback) override;
    milliseconds duration(std::string_view key, milliseconds fallback) override;
    std::vector<std::string> strings(std::string_view key,
                                     std::vector<std::string> fallback) override;
    bool is_word(std::string_view key, std::string_view word) override;
    table_reader* table(std::string_view key) override;
    std::vector<table_reader*> tables(std::string_view key) override;
    std::vector<std::string> keys() const override;

    void fail(std::string_view key, std::string_view message) override;
    // fail() naming `line` and `key` as given (an array item: "listen[1] \"...\"").
    void fail_at(uint32_t line, std::string_view key, std::string_view message);
    result<void> finish() override;

    // Not in table_reader: for cross-key checks in config.cpp.
    bool has(std::string_view key) const { return find(key) != nullptr; }
    // The key's node without marking it read (null when absent).
    const toml::node* peek(std::string_view key) const { return find(key); }
    bool failed() const { return error_->has_value(); }
    // The line of `key`, else the table's, else 1: what errors about the key name.
    uint32_t line_for(std::string_view key) const;

  private:
    // The node of `key` (marked as read), or null when absent or after a recorded problem.
    const toml::node* take(std::string_view key);
    const toml::node* find(std::string_view key) const;
    void wrong_type(std::string_view key, const toml::node& node, std::string_view wanted);
    result<void> unknown_keys() const;

    std::string name_;
    const toml::table* table_;
    std::string file_;
    std::filesystem::path base_dir_;
    std::set<std::string, std::less<>> read_;
    // Shared with the nested readers made by table() and tables(): one first problem.
    std::shared_ptr<std::optional<error>> error_ = std::make_shared<std::optional<error>>();
    std::vector<std::unique_ptr<toml_table_reader>> children_;
};

}  // namespace preforkd::detail
