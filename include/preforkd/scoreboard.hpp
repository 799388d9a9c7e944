// The scoreboard: one shared-memory slot per worker, the only channel between the
// supervisor and its workers besides signals.
//
// Each slot has one writer at a time: the supervisor while the slot is free (it prepares
// the slot before fork and clears it after reaping), the worker while it lives. Readers
// (the supervisor's maintenance tick, any worker's status page) see atomics, so a value
// may be a moment old but is never torn. Writers use relaxed load+store, not fetch_add:
// with one writer there is no race to lock against, and the hot path stays lock-free.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <preforkd/result.hpp>
#include <string>
#include <string_view>

namespace preforkd {

enum class worker_state : uint8_t { empty = 0, starting, idle, busy, retiring };

// The slots live in shared memory between processes: an atomic that is not lock-free would
// be a lock inside one process's address space, and mean nothing to the other.
static_assert(std::atomic<int32_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint8_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);

std::string_view to_string(worker_state s) noexcept;
// One character per worker, Apache's scoreboard letters: S starting, _ idle, W busy,
// G retiring (gracefully finishing), . empty. The status page, the HTML page and --status.
char state_char(worker_state s) noexcept;

// What one worker counts in its slot, read out as plain numbers; also the shape of the
// header's retired sums (the counts of every reaped worker, folded in by the supervisor).
struct traffic_counters {
    uint64_t requests = 0;
    uint64_t bytes = 0;                   // body and head bytes sent
    uint64_t accepted = 0;                // connections accepted
    std::array<uint64_t, 5> responses{};  // by status class: [0] = 1xx ... [4] = 5xx
    uint64_t tls_handshakes = 0;          // completed, resumed included (0 without HTTPS)
    uint64_t tls_resumed = 0;
    uint64_t tls_failures = 0;
    uint64_t proxy_rejected = 0;  // closed for a missing, malformed or untrusted PROXY header

    traffic_counters& operator+=(const traffic_counters& o) noexcept;
    // Counts one response: `status` 100..599 goes to its class; anything else is not counted.
    void count_response(int status) noexcept;
    // The class index of `status` (0 for 1xx ... 4 for 5xx), or -1 outside 100..599.
    static int status_class(int status) noexcept {
        return status >= 100 && status <= 599 ? status / 100 - 1 : -1;
    }
};

// What only the supervisor knows, read out of the header as plain numbers.
struct supervisor_counters {
    uint64_t reloads = 0;         // successful reloads (HUP whose new generation came up)
    uint64_t worker_crashes = 0;  // workers that died by a signal, or exited nonzero, unasked
    uint64_t fork_failures = 0;   // fork() calls that failed
};

struct alignas(64) scoreboard_slot {
    std::atomic<int32_t> pid{0};
    std::atomic<uint32_t> generation{0};
    std::atomic<uint8_t> state{0};  // worker_state
    std::atomic<uint32_t> connections{0};
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> accepted{0};
    std::atomic<int64_t> heartbeat_ms{0};  // monotonic_ms() of the worker's last loop turn
    std::atomic<int64_t> started_ms{0};    // monotonic_ms() at fork
    // Why the worker exited with exit_code::fatal (it cannot serve: the docroot is gone, the
    // application's init failed), NUL-terminated. Written by the worker just before it exits
    // and read by the supervisor after waitpid(), which orders the two: no atomics needed.
    alignas(64) char exit_reason[192] = {};
    // TLS, written by the worker at its heartbeat and when its counts change; zero for a
    // worker without tls listeners. Off the first line: plain requests never touch them.
    alignas(64) std::atomic<uint64_t> tls_handshakes{0};  // completed, resumed included
    std::atomic<uint64_t> tls_resumed{0};
    std::atomic<uint64_t> tls_failures{0};
    std::atomic<uint8_t> tls_send_path{0};  // 0 none (no tls listener), 1 userspace, 2 ktls
    // Connections on `proxy` listeners closed without an answer (untrusted peer, malformed
    // or missing header, timeout).
    std::atomic<uint64_t> proxy_rejected{0};
    // Responses by status class, [0] = 1xx ... [4] = 5xx: one increment per response.
    alignas(64) std::atomic<uint64_t> responses[5] = {};

    worker_state get_state() const noexcept {
        return static_cast<worker_state>(state.load(std::memory_order_relaxed));
    }
    void set_state(worker_state s) noexcept {
        state.store(static_cast<uint8_t>(s), std::memory_order_relaxed);
    }
    void set_exit_reason(std::string_view why) noexcept {
        const size_t n = why.size() < sizeof exit_reason ? why.size() : sizeof exit_reason - 1;
        for (size_t i = 0; i < n; ++i) exit_reason[i] = why[i];
        exit_reason[n] = '\0';
    }
    // Single-writer increment (see the file comment).
    static void bump(std::atomic<uint64_t>& counter, uint64_t by) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
    }
    // The counters as plain numbers (relaxed loads: each one a moment old, none torn).
    traffic_counters load_counters() const noexcept;
};

struct scoreboard_header {
    std::atomic<int32_t> supervisor_pid{0};
    std::atomic<uint32_t> generation{0};
    std::atomic<int64_t> started_wall_ms{0};  // supervisor start, wall clock (for display)
    // Supervisor start, monotonic_ms(): uptime is now minus this, whatever the wall clock does
    // (CLOCK_MONOTONIC is one clock for every process of the machine).
    std::atomic<int64_t> started_ms{0};
    std::atomic<uint32_t> high_water{0};  // slots [0, high_water) have ever been used
    uint32_t capacity = 0;
    // Set by the supervisor once it is told to stop gracefully (QUIT, or TERM during
    // server.shutdown_delay): health checks answer 503 so balancers stop sending.
    std::atomic<uint8_t> draining{0};

    // Totals never go down while the supervisor lives, yet slots are reused: when it reaps a
    // worker, the supervisor adds the slot's counters to these `retired_` sums and empties the
    // slot, both inside one write section of `counters_seq` (a seqlock: odd while writing).
    // A reader (any worker's /metrics or status page, another process) sums the retired
    // sums and the live slots, and retries when the sequence was odd or moved meanwhile, so
    // a reaped worker's counts are seen exactly once: in its slot or in the sums, never both,
    // never neither. Lock-free: a worker never blocks the supervisor, nor the other way.
    alignas(64) std::atomic<uint64_t> counters_seq{0};
    std::atomic<uint64_t> retired_requests{0};
    std::atomic<uint64_t> retired_bytes{0};
    std::atomic<uint64_t> retired_accepted{0};
    std::atomic<uint64_t> retired_responses[5] = {};
    std::atomic<uint64_t> retired_tls_handshakes{0};
    std::atomic<uint64_t> retired_tls_resumed{0};
    std::atomic<uint64_t> retired_tls_failures{0};
    std::atomic<uint64_t> retired_proxy_rejected{0};
    // Written by the supervisor only (single writer, scoreboard_slot::bump), never folded.
    std::atomic<uint64_t> reloads{0};
    std::atomic<uint64_t> worker_crashes{0};
    std::atomic<uint64_t> fork_failures{0};

    traffic_counters load_retired() const noexcept;
    supervisor_counters load_supervisor_counters() const noexcept;
};
// The seqlock and the sums are shared between processes: they must be plain lock-free words.
static_assert(decltype(scoreboard_header::counters_seq)::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free &&
              sizeof(std::atomic<uint64_t>) == sizeof(uint64_t));

// Owns the MAP_SHARED mapping; workers inherit it across fork. The mapping starts with a
// small file header (magic, layout version, sizes) so that another process can check what
// it maps before trusting it.
class scoreboard {
  public:
    // Anonymous: only this process and its children see it.
    static result<scoreboard> create(uint32_t capacity);
    // Backed by the file `path` (created anew, mode 0640; a file already there is replaced),
    // so that `--status` can map it from outside. The file is removed when the scoreboard of
    // the process that created it is destroyed (never by a forked worker's copy).
    static result<scoreboard> create_file(uint32_t capacity, const std::string& path);
    // Another process's scoreboard file, mapped read-only after its header is checked: a
    // file of another layout (another version of preforkd) or still being set up is an
    // error that says so. Errors carry errno (EACCES, ENOENT) when a system call failed.
    static result<scoreboard> open_read_only(const std::string& path);
    // The file's name: "scoreboard.<supervisor pid>" beside the pid file.
    static std::string file_name_for(const std::string& pid_file, pid_t supervisor_pid);
    // Removes the scoreboard files beside `pid_file` whose process is gone (a supervisor
    // that crashed or was killed cannot remove its own). Returns how many were removed.
    static int remove_stale_files(const std::string& pid_file);

    scoreboard() = default;
    scoreboard(scoreboard&& o) noexcept;
    scoreboard& operator=(scoreboard&& o) noexcept;
    scoreboard(const scoreboard&) = delete;
    scoreboard& operator=(const scoreboard&) = delete;
    ~scoreboard();

    scoreboard_header& header() const noexcept { return *header_; }
    scoreboard_slot& slot(uint32_t i) const noexcept { return slots_[i]; }
    uint32_t capacity() const noexcept { return header_ ? header_->capacity : 0; }
    // Slots worth scanning: never-used slots beyond this stay untouched (no memory).
    uint32_t used() const noexcept { return header_->high_water.load(std::memory_order_acquire); }

    // Supervisor only: prepares free slot `i` for a worker about to be forked.
    void prepare(uint32_t i, uint32_t generation, int64_t now_ms) noexcept;
    // Supervisor only: folds the counters of a reaped worker's slot into the header's
    // retired sums and clears the slot so it can be reused (one seqlock write section).
    void release(uint32_t i) noexcept;

    // Runs `read` (which reads the retired sums and the slots) until it ran while no fold
    // or slot preparation was under way; `read` must start afresh on each call. Returns
    // false if the supervisor stayed inside a write section through every attempt (it died
    // there): the last attempt's figures stand.
    template <class Read>
    bool read_consistent(Read&& read) const noexcept {
        for (int attempt = 0; attempt < max_read_attempts; ++attempt) {
            const uint64_t before = header_->counters_seq.load(std::memory_order_acquire);
            read();
            std::atomic_thread_fence(std::memory_order_acquire);
            if ((before & 1) == 0 &&
                header_->counters_seq.load(std::memory_order_relaxed) == before)
                return true;
            if (attempt >= 16) yield_now();
        }
        return false;
    }
    static constexpr int max_read_attempts = 10000;

    // The write section, for the supervisor (and tests): odd while `write` runs.
    template <class Write>
    void write_section(Write&& write) noexcept {
        std::atomic<uint64_t>& seq = header_->counters_seq;
        const uint64_t s = seq.load(std::memory_order_relaxed);
        seq.store(s + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        write();
        seq.store(s + 2, std::memory_order_release);
    }

    // The backing file; empty for an anonymous mapping.
    const std::string& path() const noexcept { return path_; }
    // The creator only: renames the backing file (the pid file moved by a reload). On
    // failure (another file system) it stays where it is.
    result<void> move_file(const std::string& to);

  private:
    static void yield_now() noexcept;
    void reset(uint32_t i, uint32_t generation, int64_t now_ms) noexcept;
    static result<scoreboard> map(uint32_t capacity, int fd);

    std::string path_;
    pid_t owner_ = 0;  // the creating process: the only one to remove the file
    void* base_ = nullptr;
    size_t length_ = 0;
    scoreboard_header* header_ = nullptr;
    scoreboard_slot* slots_ = nullptr;
};

}  // namespace preforkd
