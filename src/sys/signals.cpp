#include "sys/signals.hpp"

#include <unistd.h>

#include <cerrno>

namespace preforkd::sys {

std::optional<int> signal_for_verb(std::string_view verb) noexcept {
    for (const auto& v : signal_verbs)
        if (v.verb == verb) return v.signo;
    return std::nullopt;
}

std::string_view signal_name(int signo) noexcept {
    switch (signo) {
        case SIGHUP: return "HUP";
        case SIGINT: return "INT";
        case SIGQUIT: return "QUIT";
        case SIGKILL: return "KILL";
        case SIGTERM: return "TERM";
        case SIGUSR1: return "USR1";
        case SIGUSR2: return "USR2";
        case SIGCHLD: return "CHLD";
        case SIGTTIN: return "TTIN";
        case SIGTTOU: return "TTOU";
        case SIGPIPE: return "PIPE";
        case SIGSEGV: return "SEGV";
        case SIGABRT: return "ABRT";
        case SIGBUS: return "BUS";
        case SIGFPE: return "FPE";
        case SIGILL: return "ILL";
        case SIGSTOP: return "STOP";
        case SIGALRM: return "ALRM";
        case SIGSYS: return "SYS";
        default: return "other";
    }
}

sigset_t make_sigset(std::initializer_list<int> signals) noexcept {
    sigset_t set;
    ::sigemptyset(&set);
    for (int s : signals) ::sigaddset(&set, s);
    return set;
}

result<unique_fd> open_signalfd(const sigset_t& set) {
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
        return error::from_errno(errno, "sigprocmask");
    int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return error::from_errno(errno, "signalfd");
    return unique_fd(fd);
}

std::optional<signalfd_siginfo> read_signal(int fd) noexcept {
    signalfd_siginfo info{};
    for (;;) {
        ssize_t n = ::read(fd, &info, sizeof(info));
        if (n == static_cast<ssize_t>(sizeof(info))) return info;
        if (n < 0 && errno == EINTR) continue;
        return std::nullopt;  // EAGAIN: nothing pending
    }
}

void reset_signal_state(std::initializer_list<int> ignored, const sigset_t* blocked) noexcept {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; ++s) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        ::sigaction(s, &dfl, nullptr);  // EINVAL for the few unchangeable ones: fine
    }
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigemptyset(&ign.sa_mask);
    for (int s : ignored) ::sigaction(s, &ign, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, blocked ? blocked : &none, nullptr);
}

}  // namespace preforkd::sys
