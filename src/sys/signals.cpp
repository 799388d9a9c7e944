#include "sys/signals.hpp"

#include <unistd.h>

#include <cerrno>
#include <preforkd/detail/syscall.hpp>

namespace preforkd::sys {
namespace {

template <typename Pred>
sigset_t table_set(Pred pred) noexcept {
    sigset_t set;
    ::sigemptyset(&set);
    for (const auto& e : signal_table)
        if (pred(e)) ::sigaddset(&set, e.signo);
    return set;
}

}  // namespace

const signal_entry* find_signal(int signo) noexcept {
    for (const auto& e : signal_table)
        if (e.signo == signo) return &e;
    return nullptr;
}

supervisor_action supervisor_action_for(int signo) noexcept {
    const signal_entry* e = find_signal(signo);
    return e ? e->supervisor : supervisor_action::none;
}

std::optional<int> signal_for_verb(std::string_view verb) noexcept {
    if (verb.empty()) return std::nullopt;
    for (const auto& e : signal_table)
        if (e.verb == verb) return e.signo;
    return std::nullopt;
}

std::string signal_verbs(std::string_view sep, std::string_view last_sep) {
    size_t total = 0;
    for (const auto& e : signal_table)
        if (!e.verb.empty()) ++total;
    std::string s;
    size_t i = 0;
    for (const auto& e : signal_table) {
        if (e.verb.empty()) continue;
        if (i > 0) s += (i + 1 == total && !last_sep.empty()) ? last_sep : sep;
        s += e.verb;
        ++i;
    }
    return s;
}

std::string_view signal_name(int signo) noexcept {
    const signal_entry* e = find_signal(signo);
    return e ? e->name : "other";
}

sigset_t make_sigset(std::initializer_list<int> signals) noexcept {
    sigset_t set;
    ::sigemptyset(&set);
    for (int s : signals) ::sigaddset(&set, s);
    return set;
}

sigset_t supervisor_signals() noexcept {
    return table_set([](const signal_entry& e) { return e.supervisor != supervisor_action::none; });
}

sigset_t worker_blocked_signals() noexcept {
    return table_set([](const signal_entry& e) {
        return e.worker == worker_action::stop || e.worker == worker_action::retire ||
               e.worker == worker_action::reopen_logs;
    });
}

sigset_t worker_ignored_signals() noexcept {
    return table_set([](const signal_entry& e) { return e.worker == worker_action::ignored; });
}

result<unique_fd> open_signalfd(const sigset_t& set) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; ++s)
        if (::sigismember(&set, s) == 1) ::sigaction(s, &dfl, nullptr);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
        return error::from_errno(errno, "sigprocmask");
    int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return error::from_errno(errno, "signalfd");
    return unique_fd(fd);
}

std::optional<signalfd_siginfo> read_signal(int fd) noexcept {
    signalfd_siginfo info{};
    ssize_t n = detail::retry_eintr([&] { return ::read(fd, &info, sizeof(info)); });
    if (n == static_cast<ssize_t>(sizeof(info))) return info;
    return std::nullopt;  // EAGAIN: nothing pending
}

void reset_signal_state(const sigset_t* ignored, const sigset_t* blocked) noexcept {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigemptyset(&ign.sa_mask);
    for (int s = 1; s < NSIG; ++s) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        bool ignore = ignored && ::sigismember(ignored, s) == 1;
        ::sigaction(s, ignore ? &ign : &dfl, nullptr);  // EINVAL for the few unchangeable ones
    }
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, blocked ? blocked : &none, nullptr);
}

void reset_signal_state(std::initializer_list<int> ignored, const sigset_t* blocked) noexcept {
    const sigset_t set = make_sigset(ignored);
    reset_signal_state(&set, blocked);
}

}  // namespace preforkd::sys
