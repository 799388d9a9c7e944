// The one EINTR loop and the one write-all loop of the tree (fmt's FMT_RETRY, as a template).
// Internal to preforkd (namespace detail): installed because the public headers' inline code
// and the built-in services use it, not part of the API.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <utility>

namespace preforkd::detail {

// Calls `f` again while it fails with EINTR (returns -1 with errno == EINTR).
// Never wrap close(): Linux frees the descriptor even when close() is interrupted, and a
// retry could close a descriptor that another thread has just been given.
// Always inlined: g++ left it out of line in the session's read path (a call and a frame
// around every recv), and it is smaller than the call it replaces.
template <class F>
[[gnu::always_inline]] inline auto retry_eintr(F&& f) noexcept(noexcept(f())) -> decltype(f()) {
    decltype(f()) r;
    do r = f();
    while (r == -1 && errno == EINTR);
    return r;
}

// write(2) until all of `len` bytes are written, retrying EINTR and short writes. False with
// errno set on any other error (EAGAIN included: this is for blocking descriptors and for
// O_APPEND files, where one write either goes whole or fails).
inline bool write_all(int fd, const void* data, size_t len) noexcept {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        const ssize_t n = retry_eintr([&] { return ::write(fd, p, len); });
        if (n < 0) return false;
        if (n == 0) {
            errno = EIO;  // write(2) of a non-zero length never returns 0 on a working fd
            return false;
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

}  // namespace preforkd::detail
