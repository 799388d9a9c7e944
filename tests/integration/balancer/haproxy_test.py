#!/usr/bin/env python3
"""The scale-out story in one test (issue 15.6): Debian's haproxy on loopback in front of two
preforkd backends, PROXY protocol v2 on the data and the health-check connections, health
checks on /healthz. Clients from 127.0.0.2 (keep-alive and one connection per request, no
client retries) run while backend A is reloaded 5 times, backend B is upgraded with
`preforkd -s upgrade`, and A is stopped with TERM and server.shutdown_delay, then started
again. Expected: no failed request, and both access logs show 127.0.0.2.

usage: haproxy_test.py PREFORKD   (exit 0: passed, 77: haproxy not installed, else failed)
Every process is started here and stopped by its pid; every wait is bounded.
"""
import csv
import http.client
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import check, failures, finish, recv_all, stop_process  # noqa: E402

PREFORKD = os.path.abspath(sys.argv[1])
CLIENT_ADDRESS = "127.0.0.2"
SHUTDOWN_DELAY = 2.0  # backend A's server.shutdown_delay: >> HAProxy's inter 200ms x fall 1


def free_port():
    """A free port below the ephemeral range: HAProxy opens thousands of connections from
    127.0.0.1 while backend A is down, and one of them could take A's port from an
    ephemeral pick, so that A could not bind it again."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        p = rng.randrange(10000, max(10001, low))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port below the ephemeral range")


def wait_until(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def pid_alive(pid):
    """True while pid runs; a zombie (exited, not yet reaped by whoever adopted it) is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class backend:
    """One preforkd: its own folder, config, pid file, logs and document root. A `proxy`
    listener for HAProxy, and a plain one on which the test reads /metrics."""

    def __init__(self, base, name, shutdown_delay):
        self.name, self.d = name, os.path.join(base, name)
        self.port, self.plain_port = free_port(), free_port()
        self.body = (f"backend {name}\n" + "x" * 1000 + "\n").encode()
        os.makedirs(f"{self.d}/www")
        with open(f"{self.d}/www/index.html", "wb") as f:
            f.write(self.body)
        for p in (self.d, f"{self.d}/www"):
            os.chmod(p, 0o755)
        os.chmod(f"{self.d}/www/index.html", 0o644)
        self.config = f"{self.d}/preforkd.toml"
        self.pid_file = f"{self.d}/preforkd.pid"
        self.access_log = f"{self.d}/access.log"
        with open(self.config, "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{self.port} proxy", '
                    f'"127.0.0.1:{self.plain_port}"]\n'
                    f'pid_file = "{self.pid_file}"\n'
                    f'shutdown_delay = "{int(shutdown_delay * 1000)}ms"\n'
                    f'[workers]\nstart = 2\ngraceful_timeout = "5s"\n'
                    f'[http]\nroot = "{self.d}/www"\n'
                    f'[log]\nerror = "{self.d}/error.log"\naccess = "{self.access_log}"\n')
        self.proc = None  # the supervisor we started (our child); None once it is gone
        self.adopted = 0  # a supervisor that is no child of ours (the upgraded one)

    def pid(self):
        try:
            return int(read(self.pid_file).strip() or 0)
        except ValueError:
            return 0

    def start(self):
        out = open(f"{self.d}/stdout.log", "ab")
        self.proc = subprocess.Popen([PREFORKD, "-F", "-c", self.config], stdout=out,
                                     stderr=subprocess.STDOUT)
        out.close()
        ok = wait_until(lambda: self.pid() == self.proc.pid or self.proc.poll() is not None, 20)
        return ok and self.proc.poll() is None

    def generation(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.plain_port, timeout=5)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
        except (OSError, http.client.HTTPException):
            return 0
        for line in text.splitlines():
            if line.startswith("preforkd_generation "):
                return int(float(line.split()[1]))
        return 0

    def stop(self):
        """Stops whatever supervisor still runs, by pid (TERM, then KILL after 15 s)."""
        stop_process(self.proc, 15)
        if self.adopted and pid_alive(self.adopted):
            os.kill(self.adopted, signal.SIGTERM)
            if not wait_until(lambda: not pid_alive(self.adopted), 15):
                os.kill(self.adopted, signal.SIGKILL)


class balancer:
    """HAProxy run in the foreground (-db) from a config in the test's folder."""

    def __init__(self, d, backends):
        self.d, self.port = d, free_port()
        self.sock = f"{d}/haproxy.sock"
        self.cfg = f"{d}/haproxy.cfg"
        servers = "".join(
            f"    server {b.name} 127.0.0.1:{b.port} send-proxy-v2 check check-send-proxy"
            f" inter 200ms fall 1 rise 2\n" for b in backends)
        with open(self.cfg, "w") as f:
            f.write(f"""global
    stats socket {self.sock} mode 600 level admin
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    timeout http-keep-alive 20s
    timeout check 2s
    # No retry-on and no redispatch: HAProxy's defaults (retries 3, on conn-failure only:
    # a connection that reached no server) so that a request the backend drops shows up.
frontend web
    bind 127.0.0.1:{self.port}
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
{servers}""")
        self.proc = None

    def start(self):
        self.log = open(f"{self.d}/haproxy.log", "ab")
        self.proc = subprocess.Popen([shutil.which("haproxy"), "-db", "-f", self.cfg],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return wait_until(lambda: os.path.exists(self.sock) or self.proc.poll() is not None,
                          20) and self.proc.poll() is None

    def stats(self):
        """Server rows of `show stat`, keyed by server name."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(self.sock)
                s.sendall(b"show stat\n")
                data = recv_all(s)
        except OSError:
            return {}
        text = data.decode(errors="replace").lstrip("# ")
        return {r["svname"]: r for r in csv.DictReader(io.StringIO(text))
                if r.get("pxname") == "app" and r["svname"] not in ("FRONTEND", "BACKEND")}

    def status(self, name):
        return self.stats().get(name, {}).get("status", "")

    def stop(self):
        stop_process(self.proc)
        self.log.close()


class clients:
    """Threads sending GET / through HAProxy from 127.0.0.2 until told to stop (or a cap).
    A failed request is counted, never retried."""

    def __init__(self, port, bodies, keep_alive=2, per_request=2, cap=100000):
        self.port, self.bodies, self.cap = port, bodies, cap
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.served = {name: 0 for name in bodies.values()}
        self.failed, self.latencies, self.samples = 0, [], []
        self.threads = [threading.Thread(target=self.run, args=(True,)) for _ in range(keep_alive)]
        self.threads += [threading.Thread(target=self.run, args=(False,))
                         for _ in range(per_request)]
        self.t0 = 0.0

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                          source_address=(CLIENT_ADDRESS, 0))

    def run(self, keep_alive):
        conn = self.connect() if keep_alive else None
        for _ in range(self.cap):
            if self.stop_flag.is_set():
                break
            c = conn if keep_alive else self.connect()
            headers = {} if keep_alive else {"Connection": "close"}
            t = time.monotonic()
            try:
                c.request("GET", "/", headers=headers)
                r = c.getresponse()
                body = r.read()
                who = self.bodies.get(body) if r.status == 200 else None
                error = None if who else f"status {r.status}, {len(body)} bytes"
            except (OSError, http.client.HTTPException) as e:
                who, error = None, f"{type(e).__name__}: {e}"
                if keep_alive:  # a new connection for the next request: this one is lost
                    c.close()
                    conn = c = self.connect()
            took = time.monotonic() - t
            if not keep_alive:
                c.close()
            with self.lock:
                if who:
                    self.served[who] += 1
                    self.latencies.append(took)
                else:
                    self.failed += 1
                    if len(self.samples) < 10:
                        ka = "keep-alive" if keep_alive else "per-request"
                        self.samples.append(f"{t - self.t0:.2f}s {ka}: {error}")
        if conn:
            conn.close()

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)
        return time.monotonic() - self.t0


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def scenario(d):
    a = backend(d, "a", SHUTDOWN_DELAY)
    b = backend(d, "b", 0)
    lb = balancer(d, [a, b])
    load = None
    try:
        check(a.start() and b.start(), "both backends start")
        check(lb.start(), "haproxy starts")
        if failures:
            return
        up = wait_until(lambda: lb.status("a") == "UP" and lb.status("b") == "UP", 20)
        check(up, f"haproxy sees both backends UP: a {lb.status('a')}, b {lb.status('b')}")
        if not up:
            return
        load = clients(lb.port, {a.body: "a", b.body: "b"})
        load.start()
        time.sleep(0.5)

        # A reloaded 5 times; each HUP waits for the generation it made, so none is merged.
        gen0 = a.generation()
        reloads = 0
        for i in range(1, 6):
            a.proc.send_signal(signal.SIGHUP)
            if wait_until(lambda: a.generation() >= gen0 + i, 15, 0.1):
                reloads += 1
            time.sleep(0.3)
        check(reloads == 5, f"backend a reloaded 5 times (generation {gen0} -> {a.generation()})")

        # B upgraded: USR2, the new supervisor ready, QUIT the old one (ours: reaped here).
        old_b = b.proc.pid
        t = time.monotonic()
        up = subprocess.run([PREFORKD, "-s", "upgrade", "-c", b.config], capture_output=True,
                            timeout=60)
        upgrade_s = time.monotonic() - t
        old_status = b.proc.wait(15)
        b.proc, b.adopted = None, b.pid()
        check(up.returncode == 0 and old_status == 0 and b.adopted not in (0, old_b),
              f"backend b upgraded in {upgrade_s:.2f}s (pid {old_b} -> {b.adopted}): "
              + up.stdout.decode().strip().replace("\n", "; "))
        back = wait_until(lambda: lb.status("b") == "UP", 10)
        check(back, f"haproxy sees b UP after the upgrade ({lb.status('b')})")
        served_b = load.served["b"]

        # A stopped with TERM: HAProxy must see its 503 health and take it out while A still
        # serves, and A must be gone no sooner than shutdown_delay.
        t = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        seen_down = wait_until(lambda: lb.status("a").startswith("DOWN"), SHUTDOWN_DELAY, 0.02)
        down_s = time.monotonic() - t
        alive_when_down = a.proc.poll() is None
        check(seen_down and alive_when_down,
              f"haproxy takes a out {down_s * 1000:.0f} ms after TERM, while it still serves")
        try:
            status = a.proc.wait(20)
        except subprocess.TimeoutExpired:
            status = None
        stop_s = time.monotonic() - t
        check(status == 0 and stop_s >= SHUTDOWN_DELAY - 0.1,
              f"backend a exits {status} after {stop_s:.2f}s (shutdown_delay {SHUTDOWN_DELAY}s)")
        a.proc = None
        t = time.monotonic()
        check(a.start(), "backend a starts again")
        back = wait_until(lambda: lb.status("a") == "UP", 10)
        rejoin_s = time.monotonic() - t
        check(back, f"haproxy sees a UP {rejoin_s * 1000:.0f} ms after its restart")
        served_a = load.served["a"]
        time.sleep(1.0)
        check(load.served["a"] > served_a, "the restarted backend a serves again")
        check(load.served["b"] > served_b, "the upgraded backend b serves")

        wall = load.finish()
        total = sum(load.served.values()) + load.failed
        st = lb.stats()
        retries = sum(int(r.get("wretr") or 0) for r in st.values())
        redispatches = sum(int(r.get("wredis") or 0) for r in st.values())
        print(f"[figures] haproxy + 2 preforkd (5 HUP on a, -s upgrade on b, TERM+restart a): "
              f"{total} requests in {wall:.1f} s, a {load.served['a']}, b {load.served['b']}, "
              f"{load.failed} failed; p50 {percentile(load.latencies, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(load.latencies, 0.99) * 1000:.1f} ms; haproxy retries "
              f"{retries}, redispatches {redispatches}; a out {down_s * 1000:.0f} ms after "
              f"TERM, gone {stop_s:.1f} s after TERM, back {rejoin_s * 1000:.0f} ms after restart; "
              f"b's -s upgrade {upgrade_s:.1f} s", flush=True)
        for s in load.samples:
            print(f"[figures]   failure: {s}")
        check(load.failed == 0, f"no failed request ({load.failed} of {total})")
        check(total > 200, f"the clients got real work through ({total} requests)")
        # HAProxy's default retries (on conn-failure) would hide a refused connection from
        # the clients: a backend that closed its listener too soon shows up here instead.
        check(retries == 0 and redispatches == 0,
              f"haproxy retried no request ({retries} retries, {redispatches} redispatches)")
    finally:
        if load is not None:
            load.finish()
        lb.stop()
        a.stop()
        b.stop()
    for be in (a, b):
        log = read(be.access_log)
        check(f"\n{CLIENT_ADDRESS} " in "\n" + log,
              f"backend {be.name}'s access log names client {CLIENT_ADDRESS} "
              f"({log.count(CLIENT_ADDRESS)} lines)")
        # The checks carry a PROXY v2 LOCAL header (check-send-proxy): the balancer's own
        # address stays the client's, and none of them passes for a client.
        checks = [l for l in log.splitlines() if '"GET /healthz ' in l]
        check(checks and all(l.startswith("127.0.0.1 ") for l in checks),
              f"backend {be.name}'s health checks came through the proxy listener from "
              f"127.0.0.1 ({len(checks)} lines)")


def show_logs(d):
    for name in ("a/stdout.log", "a/error.log", "b/stdout.log", "b/error.log", "haproxy.log"):
        tail = read(os.path.join(d, name)).splitlines()[-30:]
        print(f"--- {name} (last {len(tail)} lines)\n" + "\n".join(tail))


def main():
    if not shutil.which("haproxy"):
        print("haproxy is not installed (Debian package haproxy): skipped")
        return 77
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1,
                                 source_address=(CLIENT_ADDRESS, 0)).close()
    except ConnectionRefusedError:
        pass  # bound to 127.0.0.2 and refused: the address works
    except OSError as e:
        print(f"cannot send from {CLIENT_ADDRESS}: {e}: skipped")
        return 77
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        scenario(d)
        if failures:
            show_logs(d)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
