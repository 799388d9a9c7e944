// transport: the byte stream under one accepted connection.
//
// Protocol code (the HTTP session, an embedded application's session, the blocking
// `connection`) reads and writes through a transport and never calls recv/send on the socket
// itself. The worker picks the transport when it accepts: `plain_transport` today; a TLS
// transport on `tls` listeners plugs in behind the same calls, so protocols get TLS without
// a line of their own (nginx does the same with c->recv/c->send).
//
// The calls keep the shape of the syscalls they replace, so that the hot path stays one
// virtual call away from them: a byte count, 0 for the peer's end of stream (read only), or
// -1 with errno set. EINTR is retried inside; EAGAIN/EWOULDBLOCK means "not now: wait for
// readiness" (edge-triggered loops must read or write until they see it, or until a short
// transfer with pending() == 0 shows that the socket is drained).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <preforkd/detail/syscall.hpp>
#include <preforkd/unique_fd.hpp>

namespace preforkd {

class transport {
  public:
    virtual ~transport() = default;
    transport() = default;
    transport(const transport&) = delete;
    transport& operator=(const transport&) = delete;

    // The socket: for epoll registration, poll() and socket options; never for I/O.
    virtual int fd() const noexcept = 0;

    // recv(2): up to `len` bytes into `buf`.
    virtual ssize_t read(void* buf, size_t len) noexcept = 0;
    // send(2) with MSG_NOSIGNAL. `more`: more bytes follow at once (MSG_MORE), so the kernel
    // may hold a partial segment until them, the sendfile body, or the shutdown/close.
    virtual ssize_t write(const void* buf, size_t len, bool more = false) noexcept = 0;
    // writev(2) without SIGPIPE.
    virtual ssize_t writev(const iovec* iov, int iovcnt) noexcept = 0;
    // sendfile(2): up to `count` bytes of `file_fd` from `*offset`, which is advanced.
    // 0 means the file ended before `count` (it shrank). After a short count or EAGAIN the
    // next call continues the same file (a TLS transport keeps what it read ahead of the
    // socket until the call that sends the last of `count`).
    virtual ssize_t sendfile(int file_fd, off_t* offset, size_t count) noexcept = 0;
    // Ends our direction of the stream (FIN; a TLS transport sends close_notify first).
    // Reading stays possible: a closing server drains what the client still sends.
    virtual void shutdown_write() noexcept = 0;

    // Bytes already taken from the socket and held inside the transport (decrypted TLS
    // records not yet read). While this is non-zero a short read does not mean the socket
    // is drained, and no EPOLLIN edge will announce them.
    virtual size_t pending() const noexcept { return 0; }
};

// The transport of a plain TCP or unix stream socket: each call is the syscall itself.
class plain_transport final : public transport {
  public:
    plain_transport() noexcept = default;
    explicit plain_transport(unique_fd fd) noexcept : fd_(std::move(fd)) {}

    int fd() const noexcept override { return fd_.get(); }
    // read and write are inline: a caller that holds a plain_transport (a final class) calls
    // them directly, and the hot path of a session is one recv and one send per request.
    ssize_t read(void* buf, size_t len) noexcept override {
        return detail::retry_eintr([&] { return ::recv(fd_.get(), buf, len, 0); });
    }
    ssize_t write(const void* buf, size_t len, bool more = false) noexcept override {
        const int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
        return detail::retry_eintr([&] { return ::send(fd_.get(), buf, len, flags); });
    }
    ssize_t writev(const iovec* iov, int iovcnt) noexcept override;
    ssize_t sendfile(int file_fd, off_t* offset, size_t count) noexcept override;
    void shutdown_write() noexcept override;

    // The socket is owned here: reset() closes it (the worker recycles the object).
    void reset(unique_fd fd = {}) noexcept { fd_ = std::move(fd); }
    bool valid() const noexcept { return fd_.valid(); }

  private:
    unique_fd fd_;
};

}  // namespace preforkd
