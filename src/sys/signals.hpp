// Signals are never handled in a handler: processes block them and read them from a
// signalfd inside their epoll loop, so all work happens in ordinary code.
//
// What a signal means is written once, in `signal_table` below (nginx's signals[]): its name,
// its `preforkd -s` verb, what the supervisor does with it and what a worker does with it.
// The supervisor's mask and dispatch, the names in the log, `-s` and the worker's blocked and
// ignored sets are all read from it.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <initializer_list>
#include <optional>
#include <preforkd/result.hpp>
#include <preforkd/unique_fd.hpp>
#include <string>
#include <string_view>

namespace preforkd::sys {

// What the supervisor does when it reads the signal. `none`: not blocked, default action.
enum class supervisor_action {
    none,
    reap,           // CHLD: collect exited workers, replace them
    fast_stop,      // TERM, INT: TERM the workers, exit once they are gone (5 s, then KILL)
    graceful_stop,  // QUIT: workers finish their requests, then exit
    reload,         // HUP: re-read the file, start a new generation, retire the old one
    reopen_logs,    // USR1: reopen the log files, then tell the workers to
    upgrade,        // USR2: start the binary now on disk with our listening sockets
    more_workers,   // TTIN: raise the pool floor by one
    fewer_workers,  // TTOU: lower it by one
    look_now,       // URG: a worker asks for a maintenance pass (it retires by itself)
};

// What a worker does with it. `blocked`: read from the event loop's signalfd (blocked from
// the fork on, so one sent while it starts waits instead of meeting its default action).
// `ignored`: the supervisor's business reaching the whole process group (a shell's
// `kill -TTIN -PGID`, a terminal hang-up), or SIGPIPE (EPIPE is handled where it happens).
enum class worker_action { none, stop, retire, reopen_logs, ignored };

struct signal_entry {
    int signo;
    std::string_view name;  // without "SIG"
    std::string_view verb;  // `preforkd -s VERB`, empty if none
    supervisor_action supervisor;
    worker_action worker;
};

// SIGWINCH is not in the table: nginx uses it to stop the workers of a daemon kept only for
// an upgrade's rollback, and our upgrade keeps both generations serving until QUIT or TERM
// instead. Left unblocked, its default action (ignore) applies: a terminal resize reaching
// the process group does nothing.
inline constexpr signal_entry signal_table[] = {
    {SIGCHLD, "CHLD", "", supervisor_action::reap, worker_action::none},
    {SIGTERM, "TERM", "stop", supervisor_action::fast_stop, worker_action::stop},
    // Ctrl-C reaches the whole foreground group: the workers stop too.
    {SIGINT, "INT", "", supervisor_action::fast_stop, worker_action::stop},
    {SIGQUIT, "QUIT", "quit", supervisor_action::graceful_stop, worker_action::retire},
    {SIGHUP, "HUP", "reload", supervisor_action::reload, worker_action::ignored},
    {SIGUSR1, "USR1", "reopen", supervisor_action::reopen_logs, worker_action::reopen_logs},
    {SIGUSR2, "USR2", "", supervisor_action::upgrade, worker_action::ignored},
    {SIGTTIN, "TTIN", "", supervisor_action::more_workers, worker_action::ignored},
    {SIGTTOU, "TTOU", "", supervisor_action::fewer_workers, worker_action::ignored},
    {SIGURG, "URG", "", supervisor_action::look_now, worker_action::none},
    {SIGPIPE, "PIPE", "", supervisor_action::none, worker_action::ignored},
    // Named for the log only (a worker "was killed by signal SEGV").
    {SIGKILL, "KILL", "", supervisor_action::none, worker_action::none},
    {SIGSEGV, "SEGV", "", supervisor_action::none, worker_action::none},
    {SIGABRT, "ABRT", "", supervisor_action::none, worker_action::none},
    {SIGBUS, "BUS", "", supervisor_action::none, worker_action::none},
    {SIGFPE, "FPE", "", supervisor_action::none, worker_action::none},
    {SIGILL, "ILL", "", supervisor_action::none, worker_action::none},
    {SIGSTOP, "STOP", "", supervisor_action::none, worker_action::none},
    {SIGALRM, "ALRM", "", supervisor_action::none, worker_action::none},
    {SIGSYS, "SYS", "", supervisor_action::none, worker_action::none},
    {SIGWINCH, "WINCH", "", supervisor_action::none, worker_action::none},
};

// The table's entry for `signo`, or nullptr.
const signal_entry* find_signal(int signo) noexcept;
// The supervisor's action for `signo` (none for a signal not in the table).
supervisor_action supervisor_action_for(int signo) noexcept;

// `preforkd -s VERB` and the signal it sends (nginx's -s verbs).
std::optional<int> signal_for_verb(std::string_view verb) noexcept;
// The verbs, in table order, joined: ("|") -> "stop|quit|reload|reopen";
// (", ", " or ") -> "stop, quit, reload or reopen".
std::string signal_verbs(std::string_view sep, std::string_view last_sep = {});
// "HUP", "TERM", ... (no "SIG" prefix), or "other" for a signal not in the table.
std::string_view signal_name(int signo) noexcept;

sigset_t make_sigset(std::initializer_list<int> signals) noexcept;
// The signals the supervisor acts on: blocked and read from its signalfd.
sigset_t supervisor_signals() noexcept;
// A worker's signals read from its loop's signalfd (blocked from the fork on), and the ones
// it ignores.
sigset_t worker_blocked_signals() noexcept;
sigset_t worker_ignored_signals() noexcept;

// Blocks `set` in the calling process and returns a non-blocking signalfd for it. Each
// signal's disposition goes back to SIG_DFL first: one inherited as ignored (SIGCHLD set to
// SIG_IGN by an init script or a CI runner survives exec) is discarded by the kernel instead
// of queued, and an ignored SIGCHLD even makes the kernel reap the children itself.
result<unique_fd> open_signalfd(const sigset_t& set);

// Reads one pending signal; nullopt when none is left.
std::optional<signalfd_siginfo> read_signal(int fd) noexcept;

// For a freshly forked child: every disposition back to default, then those in `ignored` to
// SIG_IGN, and only then the mask set to exactly `blocked` (nothing by default). In that
// order, a signal left pending by the parent's mask (a HUP to the process group just after
// the fork) is discarded if ignored, and never meets its default action on the way.
void reset_signal_state(const sigset_t* ignored = nullptr,
                        const sigset_t* blocked = nullptr) noexcept;
// The same with the ignored signals listed (callers that do not read the table).
void reset_signal_state(std::initializer_list<int> ignored,
                        const sigset_t* blocked = nullptr) noexcept;

}  // namespace preforkd::sys
