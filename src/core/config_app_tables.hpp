// app_tables over a parsed file: the application's tables and arrays of tables ([[site]]),
// each read by a toml_table_reader, and the log files it declares. Private to src/core.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <preforkd/config.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_reader.hpp"

namespace preforkd::detail {

class app_tables_impl final : public app_tables {
  public:
    app_tables_impl(const toml::table& root, const std::string& file,
                    const std::filesystem::path& base_dir)
        : root_(root), file_(file), base_dir_(base_dir) {}

    table_reader& table(std::string_view name) override {
        auto it = readers_.find(name);
        if (it == readers_.end()) {
            const toml::node* node = root_.get(name);
            std::string n(name);
            auto reader = std::make_unique<toml_table_reader>(n, node ? node->as_table() : nullptr,
                                                              file_, base_dir_);
            it = readers_.emplace(std::move(n), std::move(reader)).first;
        }
        return *it->second;
    }

    void log_file(const std::string& path) override {
        if (std::find(log_files_.begin(), log_files_.end(), path) == log_files_.end())
            log_files_.push_back(path);
    }
    std::vector<std::string>& log_files() { return log_files_; }

    std::vector<table_reader*> array(std::string_view name) override {
        auto it = arrays_.find(name);
        if (it == arrays_.end()) {
            std::vector<std::unique_ptr<toml_table_reader>> readers;
            const toml::node* node = root_.get(name);
            // check_top_level made sure an array named in app_schema::arrays holds tables.
            if (const toml::array* arr = node ? node->as_array() : nullptr) {
                for (size_t i = 0; i < arr->size(); ++i) {
                    readers.push_back(std::make_unique<toml_table_reader>(
                        std::string(name) + '[' + std::to_string(i) + ']', arr->get(i)->as_table(),
                        file_, base_dir_));
                }
            }
            it = arrays_.emplace(std::string(name), std::move(readers)).first;
        }
        std::vector<table_reader*> out;
        for (const auto& r : it->second) out.push_back(r.get());
        return out;
    }

  private:
    const toml::table& root_;
    const std::string& file_;
    const std::filesystem::path& base_dir_;
    std::map<std::string, std::unique_ptr<toml_table_reader>, std::less<>> readers_;
    std::map<std::string, std::vector<std::unique_ptr<toml_table_reader>>, std::less<>> arrays_;
    std::vector<std::string> log_files_;
};

}  // namespace preforkd::detail
