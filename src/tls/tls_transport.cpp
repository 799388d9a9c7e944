#include "tls/tls_transport.hpp"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace preforkd::tls {

tls_transport::tls_transport(unique_fd fd, SSL_CTX* ctx, tls_counters* counters) noexcept
    : fd_(std::move(fd)), counters_(counters) {
    ssl_ = SSL_new(ctx);
    if (ssl_ && SSL_set_fd(ssl_, fd_.get()) != 1) {
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
    if (ssl_) SSL_set_accept_state(ssl_);
    ERR_clear_error();
}

tls_transport::~tls_transport() {
    // A connection we end (Connection: close, keep-alive or graceful timeout, a retiring
    // worker) ends with close_notify, as RFC 8446 section 6.1 asks: without it the client
    // sees a truncation attack (Python's ssl: UNEXPECTED_EOF_WHILE_READING).
    send_close_notify();
    if (ssl_) SSL_free(ssl_);
}

void tls_transport::send_close_notify() noexcept {
    if (!ssl_ || !established_ || broken_ || (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0)
        return;
    ERR_clear_error();
    // Best effort: close_notify goes out if the socket takes it now; no waiting for the
    // peer's own close_notify (the connection is closing either way).
    SSL_shutdown(ssl_);
    ERR_clear_error();
}

bool tls_transport::resumed() const noexcept { return ssl_ && SSL_session_reused(ssl_) == 1; }

handshake_status tls_transport::handshake() noexcept {
    if (established_) return handshake_status::done;
    if (!ssl_ || broken_) return handshake_status::failed;
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(ssl_);
        if (r == 1) {
            established_ = true;
            wants_ = readiness::none;
            BIO* wbio = SSL_get_wbio(ssl_);
            path_ =
                choose_send_path((SSL_get_options(ssl_) & SSL_OP_ENABLE_KTLS) != 0,
                                 kernel_offers_tls_ulp_cached(), wbio && BIO_get_ktls_send(wbio));
            if (counters_) {
                ++counters_->handshakes;
                if (resumed()) ++counters_->resumed;
            }
            return handshake_status::done;
        }
        int e = SSL_get_error(ssl_, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && errno == EINTR) continue;
        if (e == SSL_ERROR_WANT_READ) {
            wants_ = readiness::read;
            return handshake_status::want_read;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            wants_ = readiness::write;
            return handshake_status::want_write;
        }
        broken_ = true;
        unsigned long code = ERR_peek_last_error();
        const char* reason = code ? ERR_reason_error_string(code) : nullptr;
        if (reason)
            failure_ = reason;
        else if (e == SSL_ERROR_SYSCALL && errno != 0)
            failure_ = std::strerror(errno);
        else
            failure_ = "connection closed during the handshake";
        ERR_clear_error();
        wants_ = readiness::none;
        if (counters_) ++counters_->failures;
        return handshake_status::failed;
    }
}

ssize_t tls_transport::fail(int ret) noexcept {
    int e = SSL_get_error(ssl_, ret);
    switch (e) {
        case SSL_ERROR_WANT_READ:
            wants_ = readiness::read;
            errno = EAGAIN;
            return -1;
        case SSL_ERROR_WANT_WRITE:
            wants_ = readiness::write;
            errno = EAGAIN;
            return -1;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        case SSL_ERROR_SYSCALL:
            broken_ = true;
            if (errno == 0) errno = ECONNRESET;
            ERR_clear_error();
            return -1;
        default:
            broken_ = true;
            ERR_clear_error();
            errno = EPROTO;
            return -1;
    }
}

ssize_t tls_transport::read(void* buf, size_t len) noexcept {
    if (!established_ || broken_) {
        errno = broken_ ? EPROTO : ENOTCONN;
        return -1;
    }
    for (;;) {
        ERR_clear_error();
        errno = 0;
        size_t n = 0;
        int r = SSL_read_ex(ssl_, buf, len, &n);
        if (r == 1) {
            starved_ = false;
            return static_cast<ssize_t>(n);
        }
        int e = SSL_get_error(ssl_, r);
        // OpenSSL reads the socket until EAGAIN before it says "want read": what it still
        // buffers is an incomplete record, which the next arriving bytes announce.
        if (e == SSL_ERROR_WANT_READ && errno != EINTR) starved_ = true;
        // OpenSSL folds EINTR into "want": retried here, as the transport contract says.
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && errno == EINTR) continue;
        return fail(r);
    }
}

ssize_t tls_transport::write_buffer(const void* buf, size_t len) noexcept {
    if (!established_ || broken_) {
        errno = broken_ ? EPIPE : ENOTCONN;
        return -1;
    }
    if (len == 0) return 0;
    ERR_clear_error();
    errno = 0;
    size_t n = 0;
    int r = SSL_write_ex(ssl_, buf, len, &n);
    if (r == 1) return static_cast<ssize_t>(n);
    return fail(r);
}

ssize_t tls_transport::write(const void* buf, size_t len, bool) noexcept {
    // `more` has no TLS counterpart: each SSL_write is whole records already.
    return write_buffer(buf, len);
}

ssize_t tls_transport::writev(const iovec* iov, int iovcnt) noexcept {
    // One record for small pieces (a header block and a short body) instead of one each.
    // After EAGAIN the caller retries with the same bytes, which gathers the same prefix:
    // OpenSSL's rule that a retried SSL_write repeats its bytes holds.
    if (iovcnt == 1) return write_buffer(iov[0].iov_base, iov[0].iov_len);
    if (!buffer_) buffer_.reset(new (std::nothrow) uint8_t[record_size]);
    if (!buffer_) {
        errno = ENOMEM;
        return -1;
    }
    size_t used = 0;
    for (int i = 0; i < iovcnt && used < record_size; ++i) {
        size_t take = std::min(iov[i].iov_len, record_size - used);
        if (take) std::memcpy(buffer_.get() + used, iov[i].iov_base, take);
        used += take;
    }
    return write_buffer(buffer_.get(), used);
}

ssize_t tls_transport::sendfile(int file_fd, off_t* offset, size_t count) noexcept {
    if (!established_ || broken_) {
        errno = broken_ ? EPIPE : ENOTCONN;
        return -1;
    }
    if (count == 0) return 0;
    if (path_ == send_path::ktls) {
        ERR_clear_error();
        errno = 0;
        ossl_ssize_t n = SSL_sendfile(ssl_, file_fd, *offset, count, 0);
        if (n >= 0) {
            *offset += static_cast<off_t>(n);
            return n;
        }
        return fail(static_cast<int>(n));
    }
    return sendfile_userspace(file_fd, offset, count);
}

ssize_t tls_transport::sendfile_userspace(int file_fd, off_t* offset, size_t count) noexcept {
    const bool staged = file_buf_ && file_fd == file_fd_ && *offset >= file_off_ &&
                        *offset < file_off_ + static_cast<off_t>(file_len_);
    if (!staged) {
        // A body of one record at most (most pages) goes through the small buffer, which
        // stays; a larger one gets its own, read a chunk at a time until its end (its last
        // chunk too, even when that is short).
        const bool small = count <= record_size && !file_buf_;
        std::unique_ptr<uint8_t[]>& buf = small ? buffer_ : file_buf_;
        if (!buf) buf.reset(new (std::nothrow) uint8_t[small ? record_size : file_chunk]);
        if (!buf) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t got;
        do
            got = ::pread(file_fd, buf.get(), std::min(count, small ? record_size : file_chunk),
                          *offset);
        while (got < 0 && errno == EINTR);
        if (got <= 0) return got;
        if (small) {
            // Sent whole or retried whole by the caller (same offset): read again then.
            ssize_t sent = write_buffer(buf.get(), static_cast<size_t>(got));
            if (sent > 0) *offset += static_cast<off_t>(sent);
            return sent;
        }
        file_fd_ = file_fd;
        file_off_ = *offset;
        file_len_ = static_cast<size_t>(got);
    }
    const size_t at = static_cast<size_t>(*offset - file_off_);
    const size_t len = std::min(count, file_len_ - at);
    // The same pointer and length on a retry: SSL_write's rule for a write that blocked.
    ssize_t sent = write_buffer(file_buf_.get() + at, len);
    if (sent <= 0) return sent;
    *offset += static_cast<off_t>(sent);
    if (static_cast<size_t>(sent) == count) {
        // The caller's whole request is out: the next file (perhaps the same descriptor
        // number, reused) starts from a fresh read.
        file_buf_.reset();
        file_fd_ = -1;
        file_len_ = 0;
    }
    return sent;
}

void tls_transport::shutdown_write() noexcept {
    send_close_notify();
    ::shutdown(fd_.get(), SHUT_WR);
}

size_t tls_transport::pending() const noexcept {
    if (!ssl_ || !established_ || starved_) return 0;
    // SSL_pending counts only the rest of the record being read; with read-ahead, whole
    // records can wait undecrypted in OpenSSL's buffer (pipelined requests, a request that
    // came with the handshake's Finished), and SSL_has_pending sees those too.
    const int decrypted = SSL_pending(ssl_);
    if (decrypted > 0) return static_cast<size_t>(decrypted);
    return SSL_has_pending(ssl_) ? 1 : 0;
}

}  // namespace preforkd::tls
