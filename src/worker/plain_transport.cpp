// plain_transport: each call is the syscall itself, with EINTR retried here.
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>

#include <preforkd/transport.hpp>

namespace preforkd {

ssize_t plain_transport::read(void* buf, size_t len) noexcept {
    ssize_t n;
    do n = ::recv(fd_.get(), buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t plain_transport::write(const void* buf, size_t len, bool more) noexcept {
    const int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
    ssize_t n;
    do n = ::send(fd_.get(), buf, len, flags);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t plain_transport::writev(const iovec* iov, int iovcnt) noexcept {
    // sendmsg rather than writev(2): MSG_NOSIGNAL, so a reset peer is EPIPE, not SIGPIPE.
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    ssize_t n;
    do n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t plain_transport::sendfile(int file_fd, off_t* offset, size_t count) noexcept {
    ssize_t n;
    do n = ::sendfile(fd_.get(), file_fd, offset, count);
    while (n < 0 && errno == EINTR);
    return n;
}

void plain_transport::shutdown_write() noexcept { ::shutdown(fd_.get(), SHUT_WR); }

}  // namespace preforkd
