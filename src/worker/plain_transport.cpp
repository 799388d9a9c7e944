// plain_transport: each call is the syscall itself, with EINTR retried here.
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <preforkd/detail/syscall.hpp>
#include <preforkd/transport.hpp>

namespace preforkd {

using detail::retry_eintr;

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
