// run(): the program around the supervisor. Command line, -t, -s, the pid-file guard,
// daemon mode, and the worker entry handed to the supervisor.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <preforkd/application.hpp>

#include "core/pid_file_setting.hpp"
#include "core/start_check.hpp"
#include "runtime/command_line.hpp"
#include "runtime/status_command.hpp"
#include "runtime/upgrade_command.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/tls_setup.hpp"
#include "sys/daemon.hpp"
#include "sys/inherited_sockets.hpp"
#include "sys/pid_file.hpp"
#include "sys/privileges.hpp"
#include "sys/signals.hpp"
#include "worker/worker.hpp"

namespace preforkd {
namespace {

void say(const std::string& program, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), message.c_str());
}

int send_signal(const application& app, const std::string& file, const std::string& verb) {
    int signo = *sys::signal_for_verb(verb);
    auto pid = sys::read_pid_file(file);
    if (!pid) {
        say(app.name, fmt::format("no pid in {}: is {} running?", file, app.name));
        return 1;
    }
    if (!sys::is_live_instance(*pid)) {
        say(app.name, fmt::format("pid {} from {} is not a running {}", *pid, file, app.name));
        return 1;
    }
    if (::kill(*pid, signo) != 0) {
        say(app.name, fmt::format("cannot send {} to pid {}: {}", sys::signal_name(signo), *pid,
                                  std::strerror(errno)));
        return 1;
    }
    return 0;
}

}  // namespace

int run(int argc, char** argv, const application& app) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto cl = parse_command_line(args, app.default_config);
    if (!cl) {
        say(app.name, cl.err().message);
        std::fputs(usage(app.name, app.default_config).c_str(), stderr);
        return 1;
    }
    if (cl->help) {
        std::fputs(usage(app.name, app.default_config).c_str(), stdout);
        return 0;
    }
    if (cl->version) {
        std::printf("%s %s\n", app.name.c_str(), app.version.c_str());
        return 0;
    }

    if (cl->status) return run_status_command(app, cl->config_path, cl->watch);
    if (cl->signal == "upgrade") return run_upgrade_command(app, cl->config_path);
    if (!cl->signal.empty()) {
        // Only the pid file matters here: the whole file was checked when the server loaded
        // it, and what it names may have gone since (a deleted docroot must not prevent
        // `-s stop`).
        auto pid_file = load_pid_file_setting(cl->config_path);
        if (!pid_file) {
            say(app.name, pid_file.err().message);
            return 1;
        }
        return send_signal(app, *pid_file, cl->signal);
    }

    // Absolute from here on: a daemon runs in "/", and HUP re-reads the file and USR2 starts
    // the new binary with it long after the relative path meant anything.
    {
        std::error_code ec;
        auto abs = std::filesystem::absolute(cl->config_path, ec);
        if (ec) {
            say(app.name, fmt::format("cannot resolve {}: {}", cl->config_path, ec.message()));
            return 1;
        }
        cl->config_path = abs.lexically_normal().string();
    }

    // In the foreground, errors go to the terminal unless the file says where they go; the
    // same rule at every reload.
    auto load = [path = cl->config_path, &app, fg = cl->foreground]() {
        auto c = load_config(path, app.schema);
        if (c && fg && !c->log.error_configured) c->log.error = "stderr";
        // The application knows what its sessions can share a worker with (a blocking
        // handler: nothing), whatever the file says.
        if (c && app.max_connections > 0) c->workers.max_connections = app.max_connections;
        // What start-up needs of the file system, for -t, start and reload alike.
        if (c) {
            if (auto r = check_start_paths(*c); !r) return result<config>(std::move(r).err());
        }
        return c;
    };
    auto cfg = load();
    if (!cfg) {
        say(app.name, cfg.err().message);
        return 1;
    }
    if (cl->test) {
        if (auto creds = sys::resolve_credentials(*cfg); !creds) {
            say(app.name, creds.err().message);
            return 1;
        }
        // The certificates as a start or a reload would load them (this process's keys are
        // thrown away with it).
        tls::ticket_key_ring ring{};
        std::vector<std::string> warnings;
        if (auto t = build_tls(*cfg, &ring, warnings); !t) {
            say(app.name, t.err().message);
            return 1;
        }
        for (const std::string& w : warnings) say(app.name, "warning: " + w);
        std::printf("%s: configuration file %s test is successful\n", app.name.c_str(),
                    cfg->path.c_str());
        return 0;
    }

    // Held from here to exit: of two servers started at once with one pid_file, exactly one
    // gets it. Before daemonizing, so the other says why on the terminal (an OFD lock stays
    // with the daemon across its forks).
    auto pid_lock = sys::pid_file_lock::acquire(cfg->server.pid_file, app.name);
    if (!pid_lock) {
        say(app.name, pid_lock.err().message);
        return 1;
    }

    logger log("supervisor", cfg->log.level);
    if (auto r = log.open(cfg->log.error); !r) {
        say(app.name, r.err().message);
        return 1;
    }

    supervisor_options opts;
    opts.pid_lock = &*pid_lock;
    opts.inherited = sys::take_inherited_sockets();
    // The command line the new binary of a USR2 gets: ours, with the file's absolute path
    // (parse_command_line allows nothing else that reaches this point).
    opts.argv = {argv[0], "-c", cl->config_path};
    if (cl->foreground) opts.argv.push_back("-F");
    {
        // Resolved now: after a package upgrade /proc/self/exe names the deleted old file,
        // while USR2 must start the new one at this path.
        std::error_code ec;
        opts.exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    }
    sys::daemon_handshake handshake;
    // The new binary of an upgrade stays where the old supervisor started it: it is already
    // detached (or supervised), and daemonizing again would hide it from the old one.
    if (!cl->foreground && !opts.inherited.upgrade) {
        auto h = sys::daemonize(app.name);
        if (!h) {
            say(app.name, h.err().message);
            return 1;
        }
        handshake = std::move(*h);
        opts.handshake = &handshake;
        opts.on_ready = [&handshake] { handshake.ready(); };
        opts.on_start_failed = [&handshake, &lock = *pid_lock](const std::string& m) {
            lock.remove_unless_another_holds_it();
            handshake.failed(m);
        };
    } else if (log.target() != "stderr") {
        // The log file has the details; the terminal deserves the reason too.
        opts.on_start_failed = [&app](const std::string& m) { say(app.name, m); };
    }

    // Only the supervisor holds the pid file's lock: a worker outliving it must not keep a
    // new server from starting.
    worker_entry entry = [&app, &lock = *pid_lock](worker_start& ws) {
        if (lock.fd() >= 0) ws.close_fds.push_back(lock.fd());
        return run_worker(ws, app);
    };
    supervisor sup(std::move(*cfg), load, std::move(entry), log, std::move(opts));
    return sup.run();
}

}  // namespace preforkd
