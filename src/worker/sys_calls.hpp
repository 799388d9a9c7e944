// The syscalls of the worker's event loop, called through a table so that unit tests can put
// faults in their way (EINTR, EAGAIN, EMFILE, ENOMEM from accept4, EINTR from epoll_wait) and
// see what the loop does, as fmt's tests do with FMT_POSIX_CALL. The loop holds a reference
// to one table; a worker uses sys_calls::real(), a test its own. An indirect call costs
// nothing next to the syscall behind it.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

namespace preforkd::detail {

struct sys_calls {
    int (*accept4)(int fd, sockaddr* addr, socklen_t* len, int flags);
    int (*epoll_wait)(int epfd, epoll_event* events, int max, int timeout_ms);
    int (*epoll_ctl)(int epfd, int op, int fd, epoll_event* ev);

    // The kernel's own calls.
    static const sys_calls& real() noexcept {
        static constexpr sys_calls table{::accept4, ::epoll_wait, ::epoll_ctl};
        return table;
    }
};

}  // namespace preforkd::detail
