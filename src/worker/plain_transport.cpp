// plain_transport: each call is the syscall itself, with EINTR retried here.
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <preforkd/detail/syscall.hpp>
#include <preforkd/transport.hpp>

namespace preforkd {

using detail::retry_eintr;

ssize_t plain_transport::read(void* buf, size_t len) noexcept {
    return retry_eintr([&] { return ::recv(fd_.get(), buf, len, 0); });
}

ssize_t plain_transport::write(const void* buf, size_t len, bool more) noexcept {
    const int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
    return retry_eintr([&] { return ::send(fd_.get(), buf, len, flags); });
}

ssize_t plain_transport::writev(const iovec* iov, int iovcnt) noexcept {
    // sendmsg rather than writev(2): MSG_NOSIGNAL, so a reset peer is EPIPE, not SIGPIPE.
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    return retry_eintr([&] { return ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL); });
}

ssize_t plain_transport::sendfile(int file_fd, off_t* offset, size_t count) noexcept {
    return retry_eintr([&] { return ::sendfile(fd_.get(), file_fd, offset, count); });
}

void plain_transport::shutdown_write() noexcept { ::shutdown(fd_.get(), SHUT_WR); }

}  // namespace preforkd
