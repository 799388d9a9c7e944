// The error log: `2026-11-25T12:00:00.123Z [info] supervisor[1234]: message`, one write(2)
// per line on an O_APPEND file, so lines of many processes never interleave.
#pragma once

#include <fmt/format.h>

#include <preforkd/config.hpp>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>

namespace preforkd {

std::string_view to_string(log_level level) noexcept;

// Opens `path` for appending log lines ("stderr" means fd 2). Shared by the error and access logs.
result<unique_fd> open_log_file(const std::string& path);

class logger {
  public:
    // `role` is "supervisor" or "worker"; the pid is read at each line (a fork keeps the logger).
    logger(std::string role, log_level min_level) : role_(std::move(role)), level_(min_level) {}

    // Opens (or reopens, for USR1) `target`: a path or "stderr". On failure the old file stays.
    result<void> open(const std::string& target);
    void set_level(log_level level) noexcept { level_ = level; }
    void set_role(std::string role) { role_ = std::move(role); }
    const std::string& target() const noexcept { return target_; }
    int fd() const noexcept { return fd_.valid() ? fd_.get() : 2; }
    // Replaces the file with an already-open one (the worker inherits the supervisor's).
    void adopt(unique_fd fd, std::string target) {
        fd_ = std::move(fd);
        target_ = std::move(target);
    }

    bool enabled(log_level level) const noexcept { return level >= level_; }

    template <class... Args>
    void log(log_level level, fmt::format_string<Args...> f, Args&&... args) noexcept {
        if (!enabled(level)) return;
        try {
            write_line(level, fmt::vformat(f, fmt::make_format_args(args...)));
        } catch (...) {
            // Formatting only throws on allocation failure; a lost log line must not kill a
            // process.
        }
    }
    template <class... Args>
    void debug(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(log_level::debug, f, std::forward<Args>(a)...);
    }
    template <class... Args>
    void info(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(log_level::info, f, std::forward<Args>(a)...);
    }
    template <class... Args>
    void warn(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(log_level::warn, f, std::forward<Args>(a)...);
    }
    template <class... Args>
    void error(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(log_level::error, f, std::forward<Args>(a)...);
    }
    template <class... Args>
    void crit(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(log_level::crit, f, std::forward<Args>(a)...);
    }

    void write_line(log_level level, std::string_view message) noexcept;

  private:
    std::string role_;
    log_level level_;
    unique_fd fd_;  // empty: stderr
    std::string target_ = "stderr";
};

}  // namespace preforkd
