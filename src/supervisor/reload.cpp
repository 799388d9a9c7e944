// Reload (HUP): a new generation from the re-read file, started beside the old one, which
// retires gracefully once the new one serves. An invalid file changes nothing.
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <preforkd/clock.hpp>

#include "supervisor/supervisor.hpp"
#include "sys/pid_file.hpp"
#include "sys/systemd.hpp"

namespace preforkd {
namespace {

// The new generation gets this long to come up before the old one retires anyway.
constexpr int64_t reload_patience_ms = 5000;

}  // namespace

result<std::shared_ptr<generation>> supervisor::make_generation(config cfg, uint32_t id) {
    auto gen = std::make_shared<generation>();
    gen->id = id;
    auto creds = sys::resolve_credentials(cfg);
    if (!creds) return std::move(creds).err();
    gen->creds = std::move(*creds);
    static const listener_list none;
    auto ls = open_listeners(cfg, current_ ? current_->listeners : none, opts_.inherited);
    if (!ls) return std::move(ls).err();
    gen->listeners = std::move(*ls);
    const std::string& access = cfg.log.access;
    if (access != "off" && access != "stderr") {
        auto fd = open_log_file(access);
        if (!fd) return std::move(fd).err();
        // Workers reopen it by name on USR1, as their own user.
        if (gen->creds.change &&
            ::fchown(fd->get(), gen->creds.uid, static_cast<gid_t>(-1)) != 0)
            log_.warn("chown {}: {}", access, std::strerror(errno));
        gen->access_log = std::move(*fd);
    }
    gen->cfg = std::move(cfg);
    return gen;
}

void supervisor::reload() {
    sys::notify("RELOADING=1");
    auto fail = [&](const std::string& why) {
        log_.error("reload failed, the running configuration stays: {}", why);
        sys::notify("READY=1\nSTATUS=reload failed: " + why);
    };
    auto cfg = load_();
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
    auto gen = make_generation(std::move(*cfg), last_generation_ + 1);
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
    previous_ = current_;
    current_ = std::move(*gen);
    last_generation_ = current_->id;
    board_.header().generation.store(current_->id);
    floor_ = c.workers.start;
    spawn_rate_ = 1;
    crashes_ = 0;
    spawn_after_ms_ = 0;
    reload_started_ms_ = monotonic_ms();
    reload_stall_logged_ = false;
    log_.info("reloading: generation {} starts {} worker(s); generation {} retires when it is up",
              current_->id, floor_, previous_->id);
    spawn_up_to_floor();
}

void supervisor::abandon_reload() {
    log_.warn("giving up generation {}: generation {} stays current", current_->id,
              previous_->id);
    for (auto& w : workers_)
        if (w.gen == current_) retire(w, "its generation never came up");
    current_ = previous_;
    previous_.reset();
    board_.header().generation.store(current_->id);
    floor_ = current_->cfg.workers.start;
    crashes_ = 0;
    spawn_after_ms_ = 0;
}

void supervisor::finish_reload_if_ready() {
    int up = 0;
    for (const auto& w : workers_) {
        if (w.gen != current_ || w.retiring) continue;
        auto st = board_.slot(w.slot).get_state();
        if (st == worker_state::idle || st == worker_state::busy) ++up;
    }
    int64_t waited = monotonic_ms() - reload_started_ms_;
    if (up < floor_ && !(up > 0 && waited >= reload_patience_ms)) {
        if (up == 0 && waited >= reload_patience_ms && !reload_stall_logged_) {
            log_.crit("generation {} has no worker up after {} ms; generation {} keeps serving",
                      current_->id, waited, previous_->id);
            reload_stall_logged_ = true;
        }
        if (up == 0 && waited >= reload_patience_ms && reload_queued_) {
            // A stalled generation must not hold every later reload hostage: the operator
            // has most likely fixed the file. Give it up and reload from the serving one.
            abandon_reload();
            reload_queued_ = false;
            reload();
        }
        return;
    }
    int retired = 0;
    for (auto& w : workers_) {
        if (w.gen == current_ || w.retiring) continue;
        retire(w, "replaced by a new generation");
        ++retired;
    }
    log_.info("generation {} serves ({} worker(s) up); {} worker(s) of older generations retire",
              current_->id, up, retired);
    previous_.reset();
    sys::notify(fmt::format("READY=1\nSTATUS=generation {}, {} worker(s)", current_->id, up));
    if (reload_queued_) {
        reload_queued_ = false;
        reload();
    }
}

}  // namespace preforkd
