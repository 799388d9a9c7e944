// open_listeners across a reload: one address keeps its socket whatever its flags.
#include "supervisor/listeners.hpp"

#include <gtest/gtest.h>

#include <preforkd/config.hpp>

#include "sys/inherited_sockets.hpp"
#include "sys/socket.hpp"

namespace preforkd {
namespace {

config with_listen(std::string_view entry) {
    config c;
    c.server.listen = {*parse_listen_address(entry)};
    return c;
}

TEST(open_listeners, same_address_new_flags_keeps_the_socket_and_the_config_has_the_flags) {
    sys::inheritance none;
    // The parser refuses port 0: try loopback ports until one binds.
    config plain;
    listener_list gen1;
    uint16_t port = 0;
    for (uint16_t p = 41000; p < 41100 && gen1.empty(); ++p) {
        plain = with_listen("127.0.0.1:" + std::to_string(p));
        auto ls = open_listeners(plain, {}, none);
        if (ls) {
            gen1 = std::move(*ls);
            port = p;
        }
    }
    ASSERT_EQ(gen1.size(), 1u);

    config tls = with_listen("127.0.0.1:" + std::to_string(port) + " tls");
    auto gen2 = open_listeners(tls, gen1, none);
    ASSERT_TRUE(gen2.ok()) << gen2.err().message;
    ASSERT_EQ(gen2->size(), 1u);
    EXPECT_EQ((*gen2)[0], gen1[0]) << "the very same socket, so its accept queue survives";
    EXPECT_TRUE(tls.server.listen[0].tls);
}

}  // namespace
}  // namespace preforkd
