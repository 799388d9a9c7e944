// A transport over buffers, for tests and the session fuzzer: what the client sent is fed
// in, what the server writes is collected, and any call can be made to fail (EINTR,
// EAGAIN, ENOMEM, ECONNRESET...) or to transfer fewer bytes than asked, at chosen points.
// Test-only: the worker's loop never sees it.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <preforkd/transport.hpp>
#include <string>
#include <string_view>

namespace preforkd::testing {

class memory_transport final : public transport {
  public:
    // One scripted outcome for the next call of its kind: fail with `err` (when not 0), or
    // move at most `max` bytes (a short read or write).
    struct step {
        int err = 0;
        size_t max = std::numeric_limits<size_t>::max();
    };
    static step fail(int err) { return step{err, 0}; }
    static step at_most(size_t n) { return step{0, n}; }

    // ---- the client's side
    void feed(std::string_view bytes) { input_.append(bytes); }
    void close_input() noexcept { input_eof_ = true; }  // the client's FIN
    // Everything the server wrote so far, and takes it (the client read it).
    std::string take_output() {
        std::string s;
        s.swap(output_);
        return s;
    }
    const std::string& output() const noexcept { return output_; }
    size_t unread_input() const noexcept { return input_.size() - read_pos_; }

    // ---- faults and limits
    std::deque<step> reads;   // consumed one per read()
    std::deque<step> writes;  // consumed one per write(), writev() or sendfile()
    // Bytes the peer's socket buffer still takes; at 0, writes answer EAGAIN until the test
    // raises it again (the client read).
    size_t window = std::numeric_limits<size_t>::max();
    // TLS-like: bytes fed are held inside the transport (pending() reports them), so a short
    // read does not mean the socket is drained.
    bool report_pending = false;

    // ---- what the server did
    bool shut_write = false;
    bool last_more = false;   // the `more` flag of the last write()
    size_t read_calls = 0;    // each call, faults included
    size_t write_calls = 0;   // write, writev and sendfile
    uint64_t file_bytes = 0;  // sent with sendfile

    int fd() const noexcept override { return -1; }

    ssize_t read(void* buf, size_t len) noexcept override {
        ++read_calls;
        size_t max = len;
        if (!reads.empty()) {
            const step s = reads.front();
            reads.pop_front();
            if (s.err != 0) return fail_with(s.err);
            max = std::min(max, s.max);
        }
        const size_t avail = input_.size() - read_pos_;
        if (avail == 0) {
            if (input_eof_) return 0;
            return fail_with(EAGAIN);
        }
        const size_t n = std::min(max, avail);
        if (n == 0) return fail_with(EAGAIN);
        input_.copy(static_cast<char*>(buf), n, read_pos_);
        read_pos_ += n;
        if (read_pos_ == input_.size()) {
            input_.clear();
            read_pos_ = 0;
        }
        return static_cast<ssize_t>(n);
    }

    ssize_t write(const void* buf, size_t len, bool more = false) noexcept override {
        last_more = more;
        size_t n = 0;
        if (!begin_write(len, n)) return -1;
        output_.append(static_cast<const char*>(buf), n);
        return static_cast<ssize_t>(n);
    }

    ssize_t writev(const iovec* iov, int iovcnt) noexcept override {
        size_t total = 0;
        for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
        size_t n = 0;
        if (!begin_write(total, n)) return -1;
        size_t left = n;
        for (int i = 0; i < iovcnt && left > 0; ++i) {
            const size_t take = std::min(left, iov[i].iov_len);
            output_.append(static_cast<const char*>(iov[i].iov_base), take);
            left -= take;
        }
        return static_cast<ssize_t>(n);
    }

    ssize_t sendfile(int file_fd, off_t* offset, size_t count) noexcept override {
        size_t n = 0;
        if (!begin_write(count, n)) return -1;
        char buf[16384];
        size_t done = 0;
        while (done < n) {
            const ssize_t r = ::pread(file_fd, buf, std::min(sizeof buf, n - done), *offset);
            if (r < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
            if (r == 0) break;  // the file ended before `count`: it shrank
            output_.append(buf, static_cast<size_t>(r));
            *offset += r;
            done += static_cast<size_t>(r);
        }
        if (window != std::numeric_limits<size_t>::max()) window += n - done;  // charged for n
        file_bytes += done;
        return static_cast<ssize_t>(done);
    }

    void shutdown_write() noexcept override { shut_write = true; }

    size_t pending() const noexcept override { return report_pending ? unread_input() : 0; }

  private:
    static ssize_t fail_with(int err) noexcept {
        errno = err;
        return -1;
    }
    // Applies the script and the window to a transfer of `len` bytes: false (errno set) for
    // a failure, else `n` is how many bytes go.
    bool begin_write(size_t len, size_t& n) noexcept {
        ++write_calls;
        size_t max = len;
        if (!writes.empty()) {
            const step s = writes.front();
            writes.pop_front();
            if (s.err != 0) {
                errno = s.err;
                return false;
            }
            max = std::min(max, s.max);
        }
        if (shut_write) {
            errno = EPIPE;
            return false;
        }
        n = std::min(max, window);
        if (n == 0 && len > 0) {
            errno = EAGAIN;
            return false;
        }
        if (window != std::numeric_limits<size_t>::max()) window -= n;
        return true;
    }

    std::string input_;
    size_t read_pos_ = 0;
    bool input_eof_ = false;
    std::string output_;
};

}  // namespace preforkd::testing
