#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <preforkd/clock.hpp>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/log.hpp>

namespace preforkd {

std::string_view to_string(log_level level) noexcept {
    switch (level) {
        case log_level::debug:
            return "debug";
        case log_level::info:
            return "info";
        case log_level::warn:
            return "warn";
        case log_level::error:
            return "error";
        case log_level::crit:
            return "crit";
    }
    return "?";
}

result<unique_fd> open_log_file(const std::string& path) {
    // 0640: logs name clients and paths; the group (adm on Debian) may read, others not.
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) return error::from_errno(errno, fmt::format("cannot open log file {}", path));
    return unique_fd(fd);
}

result<void> logger::open(const std::string& target) {
    if (target == "stderr") {
        fd_.reset();
        target_ = target;
        return {};
    }
    auto fd = open_log_file(target);
    if (!fd) return std::move(fd).err();
    fd_ = std::move(*fd);
    target_ = target;
    return {};
}

void logger::write_line(log_level level, std::string_view message) noexcept {
    int64_t now = wall_ms();
    time_t secs = static_cast<time_t>(now / 1000);
    struct tm tm {};
    ::gmtime_r(&secs, &tm);

    // One buffer, one write(2): O_APPEND makes each line land whole, whoever else writes.
    fmt::memory_buffer buf;
    fmt::format_to(std::back_inserter(buf),
                   "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z [{}] {}[{}]: ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   static_cast<int>(now % 1000), to_string(level), role_, ::getpid());
    for (char c : message) {
        // A line is one record: a newline or control byte inside a message (say, from a
        // client's request line) must not forge another one.
        unsigned char u = static_cast<unsigned char>(c);
        buf.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
    }
    buf.push_back('\n');
    // Nowhere to report a failing log: the line is dropped.
    (void)detail::write_all(fd(), buf.data(), buf.size());
}

}  // namespace preforkd
