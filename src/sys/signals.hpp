// Signals are never handled in a handler: processes block them and read them from a
// signalfd inside their epoll loop, so all work happens in ordinary code.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <initializer_list>
#include <optional>
#include <string_view>

#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>

namespace preforkd::sys {

// `preforkd -s VERB` and the signal it sends (nginx's -s verbs).
struct signal_verb {
    std::string_view verb;
    int signo;
};
inline constexpr signal_verb signal_verbs[] = {
    {"reload", SIGHUP}, {"stop", SIGTERM}, {"quit", SIGQUIT}, {"reopen", SIGUSR1}};

std::optional<int> signal_for_verb(std::string_view verb) noexcept;
// "HUP", "TERM", ... (no "SIG" prefix), or the number as text for others.
std::string_view signal_name(int signo) noexcept;

sigset_t make_sigset(std::initializer_list<int> signals) noexcept;

// Blocks `set` in the calling process and returns a non-blocking signalfd for it.
result<unique_fd> open_signalfd(const sigset_t& set);

// Reads one pending signal; nullopt when none is left.
std::optional<signalfd_siginfo> read_signal(int fd) noexcept;

// For a freshly forked child: every disposition back to default, then those in `ignored` to
// SIG_IGN, and only then the mask set to exactly `blocked` (nothing by default). In that
// order, a signal left pending by the parent's mask (a HUP to the process group just after
// the fork) is discarded if ignored, and never meets its default action on the way.
void reset_signal_state(std::initializer_list<int> ignored = {},
                        const sigset_t* blocked = nullptr) noexcept;

}  // namespace preforkd::sys
