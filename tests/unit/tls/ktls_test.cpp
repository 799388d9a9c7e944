#include "tls/ktls.hpp"

#include <gtest/gtest.h>

namespace preforkd::tls {
namespace {

TEST(ktls, the_ulp_list_is_read_word_by_word) {
    EXPECT_TRUE(ulp_list_has_tls("tls\n"));
    EXPECT_TRUE(ulp_list_has_tls("mptcp tls\n"));
    EXPECT_TRUE(ulp_list_has_tls("tls mptcp"));
    EXPECT_FALSE(ulp_list_has_tls("mptcp\n"));
    EXPECT_FALSE(ulp_list_has_tls(""));
    EXPECT_FALSE(ulp_list_has_tls("tlsx mptls"));
}

TEST(ktls, kernel_sends_only_when_setting_kernel_and_openssl_all_agree) {
    for (int bits = 0; bits < 8; ++bits) {
        bool setting = bits & 1, ulp = bits & 2, bio = bits & 4;
        EXPECT_EQ(choose_send_path(setting, ulp, bio),
                  bits == 7 ? send_path::ktls : send_path::userspace)
            << setting << ulp << bio;
    }
    EXPECT_EQ(to_string(send_path::ktls), "ktls");
    EXPECT_EQ(to_string(send_path::userspace), "userspace");
}

TEST(ktls, openssl_is_asked_for_ktls_only_when_the_kernel_offers_the_ulp) {
    // Without the ULP, asking would cost two failing setsockopt per handshake.
    EXPECT_TRUE(request_ktls(true, true));
    EXPECT_FALSE(request_ktls(true, false));
    EXPECT_FALSE(request_ktls(false, true));
    EXPECT_FALSE(request_ktls(false, false));
}

TEST(ktls, the_kernel_probe_agrees_with_the_proc_file) {
    // These machines list only mptcp; a kernel with the tls module gives true. Either way
    // the probe must say what the file says.
    FILE* f = std::fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (!f) {
        EXPECT_FALSE(kernel_offers_tls_ulp());
        return;
    }
    char buf[256] = {};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    EXPECT_EQ(kernel_offers_tls_ulp(), ulp_list_has_tls(std::string_view(buf, n)));
    EXPECT_EQ(kernel_offers_tls_ulp_cached(), kernel_offers_tls_ulp());
}

}  // namespace
}  // namespace preforkd::tls
