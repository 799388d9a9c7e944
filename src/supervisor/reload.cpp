// Reload (HUP): a new generation from the re-read file, started beside the old one, which
// retires gracefully once the new one serves. An invalid file changes nothing.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <preforkd/clock.hpp>

#include "supervisor/supervisor.hpp"
#include "sys/pid_file.hpp"
#include "sys/systemd.hpp"

namespace preforkd {

result<std::shared_ptr<generation>> supervisor::make_generation(config cfg, uint32_t id,
                                                                std::vector<int> config_fds) {
    auto gen = std::make_shared<generation>();
    gen->id = id;
    gen->config_fds = std::move(config_fds);
    // Certificates first: a bad file on HUP must leave everything running as it was.
    if (cfg.tls && !cfg.tls->certificates.empty()) {
        const int64_t now_s = monotonic_ms() / 1000;
        const bool had_ring = tickets_.mapped() != nullptr;
        tls::ticket_key_ring* ring = nullptr;
        if (cfg.tls->session_tickets) {
            auto r = tickets_.get(now_s);
            if (!r) return std::move(r).err();
            ring = *r;
        }
        std::vector<std::string> warnings;
        auto t = build_tls(cfg, ring, warnings);
        if (!t) return std::move(t).err();
        for (const std::string& w : warnings) log_.warn("{}", w);
        gen->tls = std::move(*t);
        // A reload rotates the keys; the previous one still opens the old tickets.
        if (ring && had_ring && id > 1) tls::rotate_ticket_keys(*ring, now_s, true);
    }
    auto creds = sys::resolve_credentials(cfg);
    if (!creds) return std::move(creds).err();
    gen->creds = std::move(*creds);
    static const listener_list none;
    auto ls = open_listeners(cfg, current_ ? current_->listeners : none, opts_.inherited);
    if (!ls) return std::move(ls).err();
    gen->listeners = std::move(*ls);
    for (const auto& l : gen->listeners) {
        if (l->addr.family != listen_address::family_t::unix_path) continue;
        auto& paths = l->origin == sys::socket_origin::bound     ? owned_unix_paths_
                      : l->origin == sys::socket_origin::upgrade ? upgrade_unix_paths_
                                                                 : systemd_unix_paths_;
        if (std::find(paths.begin(), paths.end(), l->addr.path) == paths.end())
            paths.push_back(l->addr.path);
    }
    const std::string& access = cfg.log.access;
    if (access != "off" && access != "stderr") {
        auto fd = open_log_file(access);
        if (!fd) return std::move(fd).err();
        // Workers reopen it by name on USR1, as their own user.
        if (gen->creds.change && ::fchown(fd->get(), gen->creds.uid, static_cast<gid_t>(-1)) != 0)
            log_.warn("chown {}: {}", access, std::strerror(errno));
        gen->access_log = std::move(*fd);
    }
    prepare_app_logs(cfg, gen->creds);
    gen->cfg = std::move(cfg);
    return gen;
}

void supervisor::prepare_app_logs(const config& cfg, const sys::credentials& creds) {
    for (const std::string& path : cfg.log.app_files) {
        auto fd = open_log_file(path);
        if (!fd) {
            log_.error("{}", fd.err().message);
            continue;
        }
        if (creds.change && ::fchown(fd->get(), creds.uid, static_cast<gid_t>(-1)) != 0)
            log_.warn("chown {}: {}", path, std::strerror(errno));
    }
}

void supervisor::reload() {
    sys::notify("RELOADING=1");
    auto fail = [&](const std::string& why) {
        log_.error("reload failed, the running configuration stays: {}", why);
        sys::notify("READY=1\nSTATUS=reload failed: " + why);
    };
    // What loading opens and keeps (an application's descriptors) belongs to the new
    // configuration: the process is single-threaded, so the difference is exactly that.
    const std::vector<int> before = open_descriptors();
    auto cfg = load_();
    std::vector<int> config_fds;
    for (int fd : open_descriptors())
        if (!std::binary_search(before.begin(), before.end(), fd)) config_fds.push_back(fd);
    if (!cfg) {
        fail(cfg.err().message);
        return;
    }
    if (cfg->log.error != log_.target()) {
        // Opened before anything changes, so a bad path leaves everything as it was.
        logger probe("supervisor", cfg->log.level);
        if (auto r = probe.open(cfg->log.error); !r) {
            fail(r.err().message);
            return;
        }
    }
    // Ids only grow, even past an abandoned generation, so logs never name two the same.
    auto gen = make_generation(std::move(*cfg), last_generation_ + 1, std::move(config_fds));
    if (!gen) {
        fail(gen.err().message);
        return;
    }
    const config& c = (*gen)->cfg;
    if (c.log.error != log_.target()) {
        if (auto r = log_.open(c.log.error); !r) log_.error("{}", r.err().message);
    }
    log_.set_level(c.log.level);
    if (c.server.pid_file != current_->cfg.server.pid_file && opts_.pid_lock) {
        // The file (and its lock) moves with the setting, or the setting stays: it never
        // names a file that was not written.
        auto r = opts_.pid_lock->move_to(c.server.pid_file, pid_file_written_ ? ::getpid() : 0,
                                         "preforkd");
        if (!r) {
            log_.error("reload: {}; the pid file stays {}", r.err().message,
                       current_->cfg.server.pid_file);
            (*gen)->cfg.server.pid_file = current_->cfg.server.pid_file;
        }
    }
    if ((*gen)->cfg.server.pid_file != current_->cfg.server.pid_file) {
        // --status looks for the scoreboard beside the pid file: it follows the file.
        const std::string to = scoreboard::file_name_for((*gen)->cfg.server.pid_file, ::getpid());
        if (auto r = pool_.board().move_file(to); !r) log_.warn("reload: {}", r.err().message);
    }
    share_board_with((*gen)->creds);
    previous_ = current_;
    previous_floor_ = floor_;
    current_ = std::move(*gen);
    last_generation_ = current_->id;
    pool_.board().header().generation.store(current_->id);
    floor_ = c.workers.start;
    spawn_rate_ = 1;
    crashes_ = 0;
    young_kills_in_a_row_ = 0;
    backoff_logged_for_ = -1;
    spawn_after_ms_ = 0;
    reload_started_ms_ = monotonic_ms();
    reload_failure_.clear();
    log_.info("reloading: generation {} starts {} worker(s); generation {} retires when it is up",
              current_->id, floor_, previous_->id);
    spawn_up_to_floor();
}

void supervisor::abandon_reload(const std::string& why) {
    log_.error("reload abandoned, generation {} stays current: {}", previous_->id, why);
    sys::notify("READY=1\nSTATUS=reload abandoned: " + why);
    for (auto& w : pool_.workers())
        if (w.gen == current_) pool_.retire(w, "its generation never came up");
    current_ = previous_;
    previous_.reset();
    pool_.board().header().generation.store(current_->id);
    floor_ = previous_floor_;
    crashes_ = 0;
    young_kills_in_a_row_ = 0;
    backoff_logged_for_ = -1;
    spawn_after_ms_ = 0;
    reload_failure_.clear();
    close_unwanted_listeners();
}

void supervisor::close_unwanted_listeners() {
    // Listeners that current_ does not serve close now, not when the last worker of an older
    // generation leaves (up to graceful_timeout later): the kernel would go on completing
    // connections to them that nobody answers. Their workers closed theirs on QUIT.
    const listener_list& wanted = current_->listeners;
    auto unwanted = [&](const std::shared_ptr<listener>& l) {
        return std::find(wanted.begin(), wanted.end(), l) == wanted.end();
    };
    for (auto& w : pool_.workers()) {
        if (w.gen == current_) continue;
        auto& ls = w.gen->listeners;
        ls.erase(std::remove_if(ls.begin(), ls.end(), unwanted), ls.end());
    }
    // The socket files we bound for addresses no longer served go with them.
    auto served = [&](const std::string& path) {
        return std::any_of(wanted.begin(), wanted.end(), [&](const auto& l) {
            return l->addr.family == listen_address::family_t::unix_path && l->addr.path == path;
        });
    };
    for (auto it = owned_unix_paths_.begin(); it != owned_unix_paths_.end();) {
        if (served(*it)) {
            ++it;
            continue;
        }
        ::unlink(it->c_str());
        it = owned_unix_paths_.erase(it);
    }
}

void supervisor::finish_reload_if_ready() {
    if (!previous_) return;
    const generation_snapshot cur = pool_.snapshot(*current_);
    reload_view v;
    v.new_up = cur.up();
    v.floor = floor_;
    v.waited_ms = monotonic_ms() - reload_started_ms_;
    v.fatal = !reload_failure_.empty();
    v.queued = reload_queued_;
    switch (plan_reload(v)) {
        case reload_step::wait:
            return;
        case reload_step::abandon: {
            std::string why = !reload_failure_.empty()
                                  ? reload_failure_
                                  : fmt::format(
                                        "no worker of generation {} came up in {} ms "
                                        "({} died at start)",
                                        current_->id, v.waited_ms, crashes_);
            abandon_reload(why);
            if (reload_queued_) {
                // The operator has most likely fixed the file: reload from the serving one.
                reload_queued_ = false;
                reload();
            }
            return;
        }
        case reload_step::finish:
            break;
    }
    // A successful reload: its generation serves (preforkd_reloads_total).
    scoreboard_slot::bump(pool_.board().header().reloads, 1);
    int retired = 0;
    for (auto& w : pool_.workers()) {
        if (w.gen == current_ || w.retiring) continue;
        pool_.retire(w, "replaced by a new generation");
        ++retired;
    }
    log_.info("generation {} serves ({} worker(s) up); {} worker(s) of older generations retire",
              current_->id, v.new_up, retired);
    previous_.reset();
    close_unwanted_listeners();
    sys::notify(fmt::format("READY=1\nSTATUS=generation {}, {} worker(s)", current_->id, v.new_up));
    if (reload_queued_) {
        reload_queued_ = false;
        reload();
    }
}

}  // namespace preforkd
