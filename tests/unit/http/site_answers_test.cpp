// Site rules inside one session (http/site_answers.hpp): what the integration tests cannot
// reach without certificates, i.e. https_redirect leaving a tls listener's requests alone.
#include <gtest/gtest.h>

#include "session_fixture.hpp"

using namespace preforkd;
using namespace preforkd::http;
using namespace preforkd::http::testing;

namespace {

class site_answers_test : public session_fixture {
  protected:
    void with_https_redirect(bool tls_listener) {
        settings_->rules.https_redirect = true;
        cfg_.server.listen.at(0).tls = tls_listener;
        make_service();
        connect();
    }
};

TEST_F(site_answers_test, https_redirect_moves_a_plain_listeners_requests) {
    with_https_redirect(false);
    auto r = get("/docs/?a=b");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 308);
    EXPECT_EQ(r[0]["location"], "https://test/docs/?a=b");
    EXPECT_TRUE(open());
}

TEST_F(site_answers_test, https_redirect_leaves_a_tls_listeners_requests_alone) {
    with_https_redirect(true);
    auto r = get("/docs/");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 200);
    EXPECT_EQ(r[0].body, "docs index\n");
}

TEST_F(site_answers_test, an_error_page_follows_a_large_file_with_sendfile_and_keeps_alive) {
    settings_->rules.error_pages.push_back({404, "/big.bin", "big.bin"});
    make_service();
    connect();
    auto r = get("/missing");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 404);
    EXPECT_EQ(r[0].body, big_);
    EXPECT_TRUE(open());
    auto next = get("/a.txt");
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].status, 200);
}

}  // namespace
