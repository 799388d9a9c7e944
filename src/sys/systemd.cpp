#include "sys/systemd.hpp"

#include <fcntl.h>

#if PREFORKD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace preforkd::sys {

bool systemd_support() noexcept { return PREFORKD_HAVE_SYSTEMD != 0; }

void notify(const std::string& state) noexcept {
#if PREFORKD_HAVE_SYSTEMD
    // unset_environment = 0: a binary upgrade's new supervisor needs NOTIFY_SOCKET too.
    sd_notify(0, state.c_str());
#else
    (void)state;
#endif
}

std::vector<int> socket_activation_fds() noexcept {
    std::vector<int> fds;
#if PREFORKD_HAVE_SYSTEMD
    int n = sd_listen_fds(1);
    for (int i = 0; i < n; ++i) {
        int fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) continue;
        int fl = ::fcntl(fd, F_GETFL);
        if (fl >= 0) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        fds.push_back(fd);
    }
#endif
    return fds;
}

}  // namespace preforkd::sys
