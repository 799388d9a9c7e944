// transport over TLS: one accepted non-blocking socket and its SSL. The worker runs
// handshake() from its event loop until done (bounded by handshake_timeout), then hands the
// transport to the protocol like a plain_transport.
//
// EAGAIN keeps its transport meaning, with one twist: TLS may need the opposite readiness
// (a read that must first flush, a write that waits for a key update). wants() says which
// readiness the last EAGAIN (or handshake step) waits for, so the loop arms that one.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <preforkd/transport.hpp>
#include <string>

#include "tls/ktls.hpp"

namespace preforkd::tls {

// Per worker; phase 2 puts them in the worker's scoreboard slot for the status page.
struct tls_counters {
    uint64_t handshakes = 0;  // completed, resumed included
    uint64_t resumed = 0;
    uint64_t failures = 0;
};

enum class handshake_status { done, want_read, want_write, failed };
enum class readiness { none, read, write };

class tls_transport final : public transport {
  public:
    // Takes the socket; `ctx` gives the SSL (certificates, tickets). `counters` may be null.
    tls_transport(unique_fd fd, SSL_CTX* ctx, tls_counters* counters) noexcept;
    ~tls_transport() override;

    // False when the SSL could not be made (out of memory): close the connection.
    bool valid() const noexcept { return ssl_ != nullptr; }

    // One non-blocking step of the server handshake.
    handshake_status handshake() noexcept;
    bool established() const noexcept { return established_; }
    readiness wants() const noexcept { return wants_; }
    // A connection dropped before its handshake could fail by itself (garbage first bytes,
    // handshake_timeout): counted with the failed handshakes.
    void count_failure() noexcept {
        if (counters_) ++counters_->failures;
    }
    // After a failed handshake: OpenSSL's reason, for a debug-level log line.
    const std::string& failure_reason() const noexcept { return failure_; }
    // After the handshake: how files go out, and whether the client resumed a session.
    send_path path() const noexcept { return path_; }
    bool resumed() const noexcept;
    SSL* ssl() const noexcept { return ssl_; }

    int fd() const noexcept override { return fd_.get(); }
    ssize_t read(void* buf, size_t len) noexcept override;
    ssize_t write(const void* buf, size_t len, bool more = false) noexcept override;
    ssize_t writev(const iovec* iov, int iovcnt) noexcept override;
    ssize_t sendfile(int file_fd, off_t* offset, size_t count) noexcept override;
    void shutdown_write() noexcept override;
    size_t pending() const noexcept override;

    // Largest plaintext gathered per SSL_write: one full TLS record.
    static constexpr size_t record_size = 16384;
    // File bytes read per pread(2) on the userspace path: four records, so a 1 MiB body
    // takes 16 reads instead of 64 (nginx reads 32 KiB).
    static constexpr size_t file_chunk = 4 * record_size;

  private:
    // Maps an SSL_* failure to the transport's shape: -1 with errno (EAGAIN for want_*).
    ssize_t fail(int ret) noexcept;
    ssize_t write_buffer(const void* buf, size_t len) noexcept;
    ssize_t sendfile_userspace(int file_fd, off_t* offset, size_t count) noexcept;
    void send_close_notify() noexcept;  // once, and only on a sound established connection

    unique_fd fd_;
    SSL* ssl_ = nullptr;  // owns the socket BIO (BIO_NOCLOSE: fd_ closes the socket)
    tls_counters* counters_;
    std::unique_ptr<uint8_t[]> buffer_;  // writev gathering, small files
    // Userspace sendfile of a file larger than a record: bytes [file_off_, file_off_ +
    // file_len_) of file_fd_, read ahead and sent as they go; a retry after EAGAIN sends
    // them again from here (OpenSSL wants the same bytes) instead of reading them again.
    // Freed when a call sends the last of its `count`.
    std::unique_ptr<uint8_t[]> file_buf_;
    int file_fd_ = -1;
    off_t file_off_ = 0;
    size_t file_len_ = 0;
    std::string failure_;
    readiness wants_ = readiness::read;
    send_path path_ = send_path::userspace;
    bool established_ = false;
    bool broken_ = false;  // a fatal TLS error: no close_notify may follow
    // The last read ended in "want read": OpenSSL's buffer holds at most part of a record,
    // so pending() says 0 (a poll() loop would otherwise spin on it until the rest came).
    bool starved_ = false;
};

}  // namespace preforkd::tls
