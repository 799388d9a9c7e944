// The three encoders behind compress_to(): zlib (gzip framing), libbrotli and libzstd, each
// streamed in 64 KiB chunks so that a stop request is seen quickly and memory stays small.
#include <brotli/encode.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <preforkd/detail/syscall.hpp>
#include <vector>

#include "http/compress_cache.hpp"

namespace preforkd::http {

namespace {

constexpr size_t chunk = 64 * 1024;

// Sequential reads from a compress_source, a chunk at a time, into the reader's buffer.
class reader {
  public:
    reader(const compress_source& s, const std::atomic<bool>& stop) : s_(s), stop_(stop) {}

    // The next chunk into data(): its size, 0 at the end; -1 with `err` set, ECANCELED when
    // asked to stop (checked between chunks: a large file stops soon), else the read's errno.
    ssize_t next(int& err) noexcept {
        if (stop_.load(std::memory_order_relaxed)) {
            err = ECANCELED;
            return -1;
        }
        ssize_t n = read(buf_.data(), buf_.size());
        if (n < 0) err = errno;
        return n;
    }
    char* data() noexcept { return buf_.data(); }

  private:
    // Up to `n` bytes at `out`; 0 at the end. -1 on error.
    ssize_t read(char* out, size_t n) noexcept {
        if (off_ >= s_.size) return 0;
        if (n > s_.size - off_) n = static_cast<size_t>(s_.size - off_);
        if (s_.fd < 0) {
            std::copy_n(s_.bytes.data() + off_, n, out);
            off_ += n;
            return static_cast<ssize_t>(n);
        }
        ssize_t got = preforkd::detail::retry_eintr(
            [&] { return ::pread(s_.fd, out, n, static_cast<off_t>(off_)); });
        if (got > 0) off_ += static_cast<uint64_t>(got);
        if (got == 0) off_ = s_.size;  // truncated under us: what is there
        return got;
    }

    const compress_source& s_;
    const std::atomic<bool>& stop_;
    std::vector<char> buf_ = std::vector<char>(chunk);
    uint64_t off_ = 0;
};

bool write_out(int fd, const uint8_t* p, size_t n) noexcept {
    while (n > 0) {
        ssize_t w = preforkd::detail::retry_eintr([&] { return ::write(fd, p, n); });
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

int gzip_to(const compress_source& in, int out_fd, int level,
            const std::atomic<bool>& stop) noexcept {
    z_stream z{};
    // 15 + 16: a gzip header and trailer rather than zlib's; memLevel 9: the fastest.
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return EIO;
    std::vector<uint8_t> obuf(chunk);
    reader rd(in, stop);
    int err = 0;
    for (bool done = false; !done && err == 0;) {
        const ssize_t n = rd.next(err);
        if (n < 0) break;
        const int flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = reinterpret_cast<Bytef*>(rd.data());
        z.avail_in = static_cast<uInt>(n);
        do {
            z.next_out = obuf.data();
            z.avail_out = static_cast<uInt>(obuf.size());
            int rc = deflate(&z, flush);
            if (rc == Z_STREAM_ERROR) {
                err = EIO;
                break;
            }
            if (!write_out(out_fd, obuf.data(), obuf.size() - z.avail_out)) {
                err = errno != 0 ? errno : EIO;
                break;
            }
            if (rc == Z_STREAM_END) done = true;
        } while (z.avail_out == 0 && err == 0);
    }
    deflateEnd(&z);
    return err;
}

int brotli_to(const compress_source& in, int out_fd, int level,
              const std::atomic<bool>& stop) noexcept {
    BrotliEncoderState* st = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
    if (st == nullptr) return ENOMEM;
    BrotliEncoderSetParameter(st, BROTLI_PARAM_QUALITY, static_cast<uint32_t>(level));
    BrotliEncoderSetParameter(st, BROTLI_PARAM_LGWIN, 22);
    BrotliEncoderSetParameter(st, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
    if (in.size < (uint64_t{1} << 30))
        BrotliEncoderSetParameter(st, BROTLI_PARAM_SIZE_HINT, static_cast<uint32_t>(in.size));
    reader rd(in, stop);
    int err = 0;
    for (bool finished = false; !finished && err == 0;) {
        const ssize_t n = rd.next(err);
        if (n < 0) break;
        const BrotliEncoderOperation op =
            n == 0 ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_PROCESS;
        size_t avail_in = static_cast<size_t>(n);
        const uint8_t* next_in = reinterpret_cast<const uint8_t*>(rd.data());
        while (err == 0) {
            size_t avail_out = 0;
            if (!BrotliEncoderCompressStream(st, op, &avail_in, &next_in, &avail_out, nullptr,
                                             nullptr)) {
                err = EIO;
                break;
            }
            size_t size = 0;
            const uint8_t* out = BrotliEncoderTakeOutput(st, &size);
            if (size > 0 && !write_out(out_fd, out, size)) err = errno != 0 ? errno : EIO;
            if (op == BROTLI_OPERATION_FINISH && BrotliEncoderIsFinished(st)) {
                finished = true;
                break;
            }
            if (avail_in == 0 && !BrotliEncoderHasMoreOutput(st) && op != BROTLI_OPERATION_FINISH)
                break;
        }
    }
    BrotliEncoderDestroyInstance(st);
    return err;
}

int zstd_to(const compress_source& in, int out_fd, int level,
            const std::atomic<bool>& stop) noexcept {
    ZSTD_CCtx* cx = ZSTD_createCCtx();
    if (cx == nullptr) return ENOMEM;
    ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setPledgedSrcSize(cx, in.size);
    std::vector<uint8_t> obuf(ZSTD_CStreamOutSize());
    reader rd(in, stop);
    int err = 0;
    uint64_t total = 0;
    for (bool finished = false; !finished && err == 0;) {
        const ssize_t n = rd.next(err);
        if (n < 0) break;
        total += static_cast<uint64_t>(n);
        if (n == 0 && total != in.size) {
            err = EAGAIN;  // the file shrank: the pledged size cannot be kept, not stored
            break;
        }
        const ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer ib{rd.data(), static_cast<size_t>(n), 0};
        for (;;) {
            ZSTD_outBuffer ob{obuf.data(), obuf.size(), 0};
            size_t left = ZSTD_compressStream2(cx, &ob, &ib, mode);
            if (ZSTD_isError(left)) {
                err = EIO;
                break;
            }
            if (!write_out(out_fd, obuf.data(), ob.pos)) {
                err = errno != 0 ? errno : EIO;
                break;
            }
            if (mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size) {
                finished = mode == ZSTD_e_end;
                break;
            }
        }
    }
    ZSTD_freeCCtx(cx);
    return err;
}

}  // namespace

int compression_level(coding c, uint64_t size) noexcept {
    const bool small = size <= (uint64_t{256} << 10);
    switch (c) {
        case coding::br:
            return small ? 11 : 9;
        case coding::zstd:
            return small ? 19 : 12;
        case coding::gzip:
        case coding::identity:
            break;
    }
    return 9;
}

int compress_to(coding c, const compress_source& in, int out_fd,
                const std::atomic<bool>& stop) noexcept {
    const int level = compression_level(c, in.size);
    try {
        switch (c) {
            case coding::br:
                return brotli_to(in, out_fd, level, stop);
            case coding::zstd:
                return zstd_to(in, out_fd, level, stop);
            case coding::gzip:
                return gzip_to(in, out_fd, level, stop);
            case coding::identity:
                break;
        }
    } catch (...) {
        return ENOMEM;  // the buffers
    }
    return EINVAL;
}

}  // namespace preforkd::http
