#include "sys/privileges.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/config_lines.hpp"

namespace preforkd::sys {
namespace {

// Errors name the config file and the key's line, as load errors do: `file:line: key ...`.
struct key_site {
    const config& cfg;
    std::string_view key;
    uint32_t line;

    error fail(const std::string& what) const {
        return error(fmt::format("{}:{}: {} {}", cfg.path.string(), line, key, what));
    }
    // A lookup of `name` that failed with `rc` (the database, not the name, is at fault).
    error fail_lookup(int rc, const std::string& name) const {
        auto e = error::from_errno(rc, name);
        return error(e.code, fail(e.message).message);
    }
};

result<passwd> lookup_user(const std::string& name, std::vector<char>& buf, const key_site& at) {
    passwd pw{};
    passwd* found = nullptr;
    buf.resize(16384);
    int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc != 0) return at.fail_lookup(rc, name);
    if (!found) return at.fail(name + ": no such user");
    return pw;
}

result<gid_t> lookup_group(const std::string& name, const key_site& at) {
    group gr{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc != 0) return at.fail_lookup(rc, name);
    if (!found) return at.fail(name + ": no such group");
    return found->gr_gid;
}

std::string group_name(gid_t gid) {
    group gr{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found) return found->gr_name;
    return std::to_string(gid);
}

}  // namespace

result<credentials> resolve_credentials(const config& cfg) {
    const server_config& server = cfg.server;
    const key_site user_at{cfg, "server.user", detail::line_of_key(cfg, "server.user")};
    const key_site group_at{cfg, "server.group", detail::line_of_key(cfg, "server.group")};
    credentials c;
    if (::geteuid() != 0) {
        // An ordinary user cannot become anyone else; saying otherwise is a mistake to report.
        std::vector<char> buf;
        uid_t me = ::geteuid();
        if (!server.user.empty()) {
            auto pw = lookup_user(server.user, buf, user_at);
            if (!pw) return std::move(pw).err();
            if (pw->pw_uid != me)
                return user_at.fail(server.user + ": only root can run workers as another user");
        }
        if (!server.group.empty()) {
            auto gid = lookup_group(server.group, group_at);
            if (!gid) return std::move(gid).err();
            if (*gid != ::getegid())
                return group_at.fail(server.group + ": only root can run workers in another group");
        }
        return c;
    }
    std::string user = server.user.empty() ? "nobody" : server.user;
    std::vector<char> buf;
    auto pw = lookup_user(user, buf, user_at);
    if (!pw) return std::move(pw).err();
    c.user = user;
    c.uid = pw->pw_uid;
    if (server.group.empty()) {
        c.gid = pw->pw_gid;  // nobody's primary group is nogroup on Debian
    } else {
        auto gid = lookup_group(server.group, group_at);
        if (!gid) return std::move(gid).err();
        c.gid = *gid;
    }
    c.group = group_name(c.gid);
    c.change = c.uid != 0 || c.gid != 0;
    return c;
}

result<void> drop_privileges(const credentials& creds) noexcept {
    if (!creds.change) return {};
    // Supplementary groups first (root's would survive setgid), then the gid, then the uid:
    // after setuid there is no right left to change the others. The user's own groups from
    // the group database, as nginx and Apache do: a docroot readable through a group the user
    // is a member of must stay readable. Should the database fail us (an unreachable NSS
    // source), the one group is still a safe set: root's groups must go in any case.
    if (::initgroups(creds.user.c_str(), creds.gid) != 0 && ::setgroups(1, &creds.gid) != 0)
        return error::from_errno(errno, "setgroups");
    if (::setgid(creds.gid) != 0) return error::from_errno(errno, "setgid");
    if (::setuid(creds.uid) != 0) return error::from_errno(errno, "setuid");
    // Proof that root is gone for good: neither the uid nor the gid comes back. (A group that
    // is root's on purpose, gid 0, is not a regained privilege.)
    if (creds.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0))
        return error("privileges could be regained after setuid");
    if (creds.uid != 0 && creds.gid != 0 && (::setgid(0) == 0 || ::setegid(0) == 0))
        return error("group root could be regained after setuid");
    return {};
}

}  // namespace preforkd::sys
