#include "http/compress_cache.hpp"

#include <brotli/decode.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

using namespace preforkd;
using namespace preforkd::http;
namespace fs = std::filesystem;

namespace {

std::string read_fd(int fd) {
    std::string out;
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
        off += n;
    }
    return out;
}

std::string gunzip(const std::string& in, size_t expect) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    std::string out(expect + 1024, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    return out;
}

std::string unbrotli(const std::string& in, size_t expect) {
    std::string out(expect + 1024, '\0');
    size_t size = out.size();
    EXPECT_EQ(BrotliDecoderDecompress(in.size(), reinterpret_cast<const uint8_t*>(in.data()), &size,
                                      reinterpret_cast<uint8_t*>(out.data())),
              BROTLI_DECODER_RESULT_SUCCESS);
    out.resize(size);
    return out;
}

std::string unzstd(const std::string& in) {
    const unsigned long long n = ZSTD_getFrameContentSize(in.data(), in.size());
    EXPECT_NE(n, ZSTD_CONTENTSIZE_ERROR);
    EXPECT_NE(n, ZSTD_CONTENTSIZE_UNKNOWN);
    std::string out(static_cast<size_t>(n), '\0');
    size_t got = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
    EXPECT_FALSE(ZSTD_isError(got));
    out.resize(got);
    return out;
}

std::string sample(size_t n) {
    std::string s;
    s.reserve(n);
    for (size_t i = 0; s.size() < n; ++i)
        s += "<p class=\"x" + std::to_string(i % 97) + "\">text</p>\n";
    s.resize(n);
    return s;
}

class compress_cache_test : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("preforkd-ccache-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        dir_fd_.reset(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string compress(coding c, const std::string& data, bool from_fd) {
        unique_fd out(::open((dir_ / "out").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        std::atomic<bool> stop{false};
        compress_source src{data, -1, data.size()};
        unique_fd in;
        if (from_fd) {
            std::ofstream(dir_ / "in", std::ios::binary) << data;
            in.reset(::open((dir_ / "in").c_str(), O_RDONLY | O_CLOEXEC));
            src = {{}, in.get(), data.size()};
        }
        EXPECT_EQ(compress_to(c, src, out.get(), stop), 0);
        return read_fd(out.get());
    }
    void put(const std::string& name, size_t size, int age_s) {
        std::ofstream(dir_ / name, std::ios::binary) << std::string(size, 'x');
        const auto t = std::chrono::system_clock::now() - std::chrono::seconds(age_s);
        const auto s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch());
        timespec ts[2] = {{s.count(), 0}, {s.count(), 0}};
        ::utimensat(AT_FDCWD, (dir_ / name).c_str(), ts, 0);
    }

    fs::path dir_;
    unique_fd dir_fd_;
};

}  // namespace

TEST_F(compress_cache_test, every_coding_round_trips_through_the_libraries_decoders) {
    for (size_t n : {size_t{0}, size_t{1500}, size_t{200'000}}) {
        const std::string data = sample(n);
        for (bool from_fd : {false, true}) {
            const std::string gz = compress(coding::gzip, data, from_fd);
            EXPECT_TRUE(gunzip(gz, n) == data) << n;
            const std::string br = compress(coding::br, data, from_fd);
            EXPECT_TRUE(unbrotli(br, n) == data) << n;
            const std::string zs = compress(coding::zstd, data, from_fd);
            EXPECT_TRUE(unzstd(zs) == data) << n;
            if (n > 1000) {
                EXPECT_LT(gz.size(), data.size() / 4);
                EXPECT_LT(br.size(), gz.size());
            }
        }
    }
}

TEST_F(compress_cache_test, a_stop_request_cancels) {
    unique_fd out(::open((dir_ / "out").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    std::atomic<bool> stop{true};
    const std::string data = sample(100'000);
    EXPECT_EQ(compress_to(coding::br, {data, -1, data.size()}, out.get(), stop), ECANCELED);
}

TEST(cache_file_name, differs_by_root_path_etag_and_coding_and_is_stable) {
    std::set<std::string> names;
    for (const char* root : {"1:2", "1:3"})
        for (const char* path : {"a.html", "b.html", "a.htmlx"})
            for (const char* etag : {"\"1.2-3\"", "\"1.2-4\""})
                for (coding c : {coding::br, coding::gzip, coding::zstd})
                    names.insert(cache_file_name(root, path, etag, c));
    EXPECT_EQ(names.size(), 2u * 3 * 2 * 3);
    // Stable across builds and processes: a fixed input gives a fixed name.
    EXPECT_EQ(cache_file_name("1:2", "a.html", "\"1.2-3\"", coding::br),
              cache_file_name("1:2", "a.html", "\"1.2-3\"", coding::br));
    const std::string n = cache_file_name("1:2", "a.html", "\"1.2-3\"", coding::zstd);
    EXPECT_EQ(n.size(), 36u);
    EXPECT_EQ(n.substr(32), ".zst");
    EXPECT_TRUE(is_cache_file_name(n));
    EXPECT_TRUE(is_cache_file_name(".tmp-12-3"));
    EXPECT_FALSE(is_cache_file_name("index.html"));
    EXPECT_FALSE(is_cache_file_name(std::string(32, 'g') + ".br"));
    // Parts are separated: moving a byte from one part to the next changes the name.
    EXPECT_NE(cache_file_name("ab", "c", "e", coding::br),
              cache_file_name("a", "bc", "e", coding::br));
}

TEST_F(compress_cache_test, eviction_removes_the_oldest_copies_down_to_seven_eighths) {
    for (int i = 0; i < 10; ++i)
        put(cache_file_name("r", std::to_string(i), "e", coding::br), 1000, 100 - i);
    put("operator-notes.txt", 50'000, 1000);  // not ours: never touched
    put(".tmp-1-1", 1000, 3600);              // a crashed write: removed
    put(".tmp-1-2", 1000, 1);                 // a write in progress: kept
    evict_result r = evict_oldest(dir_fd_.get(), 8000);
    EXPECT_EQ(r.bytes_before, 10'000u);
    EXPECT_EQ(r.bytes_after, 7000u);
    EXPECT_EQ(r.removed, 4u);  // three copies and the stale temporary file
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(fs::exists(dir_ / cache_file_name("r", std::to_string(i), "e", coding::br)),
                  i >= 3)
            << i;
    EXPECT_TRUE(fs::exists(dir_ / "operator-notes.txt"));
    EXPECT_FALSE(fs::exists(dir_ / ".tmp-1-1"));
    EXPECT_TRUE(fs::exists(dir_ / ".tmp-1-2"));
    // Under the bound: nothing to do.
    r = evict_oldest(dir_fd_.get(), 8000);
    EXPECT_EQ(r.removed, 0u);
}

TEST_F(compress_cache_test, eviction_work_is_bounded) {
    for (int i = 0; i < 20; ++i)
        put(cache_file_name("r", std::to_string(i), "e", coding::gzip), 100, 100 - i);
    evict_result r = evict_oldest(dir_fd_.get(), 100, 65536, 5);
    EXPECT_EQ(r.removed, 5u);
}

TEST_F(compress_cache_test, the_compressor_thread_stores_a_copy_atomically) {
    const std::string data = sample(50'000);
    compressor comp(dir_fd_.get(), 1 << 20);
    compress_job job;
    job.bytes = data;
    job.size = data.size();
    job.name = cache_file_name("r", "p", "e", coding::br);
    job.c = coding::br;
    ASSERT_TRUE(comp.submit(std::move(job)));
    for (int i = 0; i < 1000 && comp.completed() == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(comp.completed(), 1u);
    EXPECT_EQ(comp.take_error(), 0);
    unique_fd f(::open((dir_ / cache_file_name("r", "p", "e", coding::br)).c_str(), O_RDONLY));
    ASSERT_TRUE(f.valid());
    EXPECT_TRUE(unbrotli(read_fd(f.get()), data.size()) == data);
    for (const auto& entry : fs::directory_iterator(dir_))
        EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u);  // no temporary left
}

TEST_F(compress_cache_test, the_compressor_queue_is_bounded_and_stopping_is_prompt) {
    // Not very compressible and under 256 KiB: brotli quality 11, a good part of a second
    // per job, so the queue fills long before the thread empties it.
    std::string data(250'000, ' ');
    uint32_t x = 12345;
    for (char& ch : data) {
        x = x * 1103515245u + 12345u;
        ch = static_cast<char>('a' + (x >> 16) % 26);
    }
    size_t accepted = 0;
    const auto t0 = std::chrono::steady_clock::now();
    {
        compressor comp(dir_fd_.get(), 1 << 30);
        for (int i = 0; i < 40; ++i) {
            compress_job job;
            job.bytes = data;
            job.size = data.size();
            job.name = cache_file_name("r", std::to_string(i), "e", coding::br);
            job.c = coding::br;
            accepted += comp.submit(std::move(job)) ? 1 : 0;
        }
        EXPECT_LE(accepted, compressor::max_queue + 1);
        EXPECT_GE(accepted, compressor::max_queue);
    }  // the destructor stops the thread in the middle of a job
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    for (const auto& entry : fs::directory_iterator(dir_))
        EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u);
}

TEST_F(compress_cache_test, a_folder_it_cannot_write_reports_the_error) {
    if (::geteuid() == 0) GTEST_SKIP() << "root writes anywhere";
    fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
    compressor comp(dir_fd_.get(), 1 << 20);
    compress_job job;
    job.bytes = sample(5000);
    job.size = 5000;
    job.name = cache_file_name("r", "p", "e", coding::gzip);
    ASSERT_TRUE(comp.submit(std::move(job)));
    for (int i = 0; i < 1000 && comp.completed() == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(comp.take_error(), EACCES);
    fs::permissions(dir_, fs::perms::owner_all);
}

TEST_F(compress_cache_test, two_compressors_storing_the_same_copy_leave_one_whole_file) {
    // Two workers asked for the same version at once: both may compress, the renames are
    // atomic, and what stays is one whole copy, never a mix.
    const std::string data = sample(300'000);
    const std::string name = cache_file_name("r", "same", "e", coding::gzip);
    {
        compressor a(dir_fd_.get(), 1 << 30);
        compressor b(dir_fd_.get(), 1 << 30);
        for (compressor* c : {&a, &b}) {
            compress_job job;
            job.bytes = data;
            job.size = data.size();
            job.name = name;
            job.c = coding::gzip;
            ASSERT_TRUE(c->submit(std::move(job)));
        }
        for (int i = 0; i < 2000 && (a.completed() == 0 || b.completed() == 0); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_EQ(a.take_error(), 0);
        EXPECT_EQ(b.take_error(), 0);
    }
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(dir_)) {
        ++files;
        EXPECT_EQ(entry.path().filename(), name);
    }
    EXPECT_EQ(files, 1u);
    unique_fd f(::open((dir_ / name).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(f.valid());
    EXPECT_TRUE(gunzip(read_fd(f.get()), data.size()) == data);
}
