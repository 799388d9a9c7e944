#!/usr/bin/env python3
"""TLS through the server's life events, with the real binary: HTTPS load across
`preforkd -s upgrade` (USR2) and QUIT with no failed request, close_notify from a retiring
worker, session tickets across an upgrade, the send path in the log and on the status page,
plain HTTP with a body on a TLS port. Loopback only, every wait bounded.

usage: tls_life_test.py PREFORKD   (exit 0: all passed)
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import (check, finish, free_port, make_ca, make_cert, read_text,  # noqa: E402
                     recv_all, recv_until_close, run)

PREFORKD = sys.argv[1]
PAGE = b"tls life " * 200  # 1800 bytes


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class server:
    def __init__(self, d, extra="", flags="tls", access="off", http_extra=""):
        self.d = d
        self.tls_port, self.plain_port = free_port(), free_port()
        self.extra, self.flags, self.access, self.http_extra = extra, flags, access, http_extra
        self.proc = None

    def write(self):
        with open(f"{self.d}/preforkd.toml", "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{self.tls_port} {self.flags}", '
                    f'"127.0.0.1:{self.plain_port}"]\npid_file = "{self.d}/p.pid"\n'
                    f'[workers]\nstart = 2\ngraceful_timeout = "8s"\n'
                    f'[log]\nerror = "{self.d}/error.log"\naccess = "{self.access}"\n'
                    f'level = "debug"\n[http]\nroot = "{self.d}/www"\n'
                    f'keepalive_timeout = "10s"\n{self.http_extra}{self.extra}'
                    f'[tls]\ncertificates = [{{ cert = "{self.d}/a.pem", '
                    f'key = "{self.d}/a.key" }}]\nhandshake_timeout = "5s"\n')

    def start(self):
        self.write()
        for f in ("p.pid", "error.log"):
            try:
                os.unlink(f"{self.d}/{f}")
            except OSError:
                pass
        self.proc = subprocess.Popen([PREFORKD, "-F", "-c", f"{self.d}/preforkd.toml"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = wait_for(lambda: self.pid() == self.proc.pid, 15)
        # Both workers up: the status page lists them.
        return ok and wait_for(lambda: len(self.workers()) >= 2, 15)

    def pid(self):
        try:
            return int(open(f"{self.d}/p.pid").read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def status(self):
        try:
            with socket.create_connection(("127.0.0.1", self.plain_port), timeout=5) as s:
                s.sendall(b"GET /server-status?json HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                data = recv_all(s)
            return json.loads(data.split(b"\r\n\r\n", 1)[1])
        except (OSError, ValueError, IndexError):
            return {}

    def workers(self):
        return [w for w in self.status().get("workers", []) if w.get("state") != "retiring"]

    def stop(self):
        pid = self.pid()
        for p in {pid, self.proc.pid if self.proc else 0}:
            if p > 0 and pid_alive(p):
                try:
                    os.kill(p, signal.SIGTERM)
                except OSError:
                    pass
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if pid > 0:
            wait_for(lambda: not pid_alive(pid), 10)

    def error_log(self):
        return read_text(f"{self.d}/error.log")


def client_context(d):
    return ssl.create_default_context(cafile=f"{d}/ca.pem")


def read_response(s, buf):
    """One response from the TLS socket `s`: (status, headers text, body, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            raise EOFError("closed before a whole head")
        buf += c
    head, buf = buf.split(b"\r\n\r\n", 1)
    text = head.decode("latin-1")
    length = 0
    for line in text.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(buf) < length:
        c = s.recv(65536)
        if not c:
            raise EOFError("closed inside a body")
        buf += c
    return int(text.split()[1]), text, buf[:length], buf[length:]


class tls_load:
    """HTTPS load: keep-alive clients and a new connection per request. A connection the
    server refuses (no listener any more) ends a client; anything that fails after the TCP
    connection was accepted is a failed request."""

    def __init__(self, d, port, keep_alive=2, per_request=2):
        self.d, self.port = d, port
        self.ctx = client_context(d)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = []
        self.refused = 0
        self.threads = [threading.Thread(target=self.keep_alive_client)
                        for _ in range(keep_alive)]
        self.threads += [threading.Thread(target=self.per_request_client)
                         for _ in range(per_request)]

    def connect(self):
        try:
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        except ConnectionRefusedError:
            with self.lock:
                self.refused += 1
            return None
        try:
            return self.ctx.wrap_socket(raw, server_hostname="a.test")
        except Exception as e:  # noqa: BLE001
            raw.close()
            self.fail("handshake: " + repr(e))
            return None

    def fail(self, what):
        with self.lock:
            self.failed.append(what)

    def served(self, status, body):
        if status == 200 and body == PAGE:
            with self.lock:
                self.ok += 1
            return True
        self.fail(f"status {status}, {len(body)} bytes")
        return False

    def keep_alive_client(self):
        while not self.stop.is_set():
            s = self.connect()
            if s is None:
                if self.refused_only():
                    return
                continue
            buf = b""
            try:
                while not self.stop.is_set():
                    s.sendall(b"GET /page.html HTTP/1.1\r\nHost: a.test\r\n\r\n")
                    status, head, body, buf = read_response(s, buf)
                    if not self.served(status, body):
                        break
                    if "connection: close" in head.lower():
                        break
            except Exception as e:  # noqa: BLE001
                self.fail("keep-alive: " + repr(e))
            finally:
                s.close()

    def per_request_client(self):
        while not self.stop.is_set():
            s = self.connect()
            if s is None:
                if self.refused_only():
                    return
                continue
            try:
                s.sendall(b"GET /page.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                status, _, body, _ = read_response(s, b"")
                self.served(status, body)
            except Exception as e:  # noqa: BLE001
                self.fail("new connection: " + repr(e))
            finally:
                s.close()

    def refused_only(self):
        time.sleep(0.05)
        return self.refused > 0

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(20)

    def check_none_failed(self, across, at_least):
        check(not self.failed and self.ok > at_least,
              f"no failed HTTPS request across {across} ({self.ok} ok, {len(self.failed)} "
              f"failed: {'; '.join(self.failed[:3])})")


def prepare(d):
    www = f"{d}/www"
    os.makedirs(www, exist_ok=True)
    with open(f"{www}/page.html", "wb") as f:
        f.write(PAGE)
    os.chmod(d, 0o755)
    os.chmod(www, 0o755)
    os.chmod(f"{www}/page.html", 0o644)


def upgrade_tests(d):
    srv = server(d)
    check(srv.start(), "upgrade: the server starts")
    try:
        old = srv.pid()
        sess = f"{d}/up.sess"
        base = ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.tls_port}", "-servername",
                "a.test", "-CAfile", f"{d}/ca.pem", "-tls1_3", "-ign_eof"]
        req = b"GET /page.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        run(base + ["-sess_out", sess], inp=req)

        load = tls_load(d, srv.tls_port)
        load.start()
        time.sleep(0.5)
        t0 = time.time()
        up = run([PREFORKD, "-s", "upgrade", "-c", f"{d}/preforkd.toml"], timeout=60)
        took = time.time() - t0
        try:
            srv.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        new = srv.pid()
        wait_for(lambda: len(srv.workers()) >= 2, 10)
        time.sleep(0.5)  # load on the new generation too
        load.finish()
        print(f"[figures] HTTPS load across preforkd -s upgrade: {load.ok} ok, "
              f"{len(load.failed)} failed, upgrade took {took:.2f} s", flush=True)
        check(up.returncode == 0 and new != old and new > 0,
              "preforkd -s upgrade swaps the supervisor: " + up.stdout.decode()[-200:]
              + up.stderr.decode()[-200:])
        load.check_none_failed("-s upgrade", 20)

        # A ticket issued by the old supervisor's workers resumes on the new one's.
        r = run(base + ["-sess_in", sess], inp=req)
        check("Reused, TLSv1.3" in r.stdout.decode(), "a session ticket survives -s upgrade")
    finally:
        srv.stop()


def quit_tests(d):
    srv = server(d)
    check(srv.start(), "quit: the server starts")
    try:
        log = srv.error_log()
        starts = log.count("tls: send path userspace")
        check(starts == 2, f"each worker logs its TLS send path once at start ({starts} lines)")
        ws = srv.workers()
        check(ws and all(w.get("tls_path") == "userspace" for w in ws),
              "the status page shows each worker's TLS path: "
              + ", ".join(str(w.get("tls_path")) for w in ws))

        # An idle keep-alive connection held across a reload (HUP): its worker retires, the
        # next request gets Connection: close, then a close_notify (no ragged EOF).
        ctx = client_context(d)
        raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="a.test", suppress_ragged_eofs=False)
        s.sendall(b"GET /page.html HTTP/1.1\r\nHost: a.test\r\n\r\n")
        status, head, body, buf = read_response(s, b"")
        check(status == 200 and "connection: close" not in head.lower(),
              "a keep-alive response before the reload")
        os.kill(srv.pid(), signal.SIGHUP)
        wait_for(lambda: any(w.get("state") == "retiring"
                             for w in srv.status().get("workers", [])), 10)
        s.sendall(b"GET /page.html HTTP/1.1\r\nHost: a.test\r\n\r\n")
        status, head, body, buf = read_response(s, buf)
        check(status == 200 and body == PAGE and "connection: close" in head.lower(),
              "a retiring worker answers an idle TLS keep-alive connection with Connection: close")
        try:
            end = s.recv(100)
            clean = end == b""
            why = repr(end)
        except ssl.SSLError as e:
            clean, why = False, repr(e)
        check(clean, "then a close_notify, not a ragged EOF: " + why)
        s.close()

        # QUIT of the supervisor under HTTPS load: every connection it accepted is served.
        wait_for(lambda: len(srv.workers()) >= 2, 10)
        load = tls_load(d, srv.tls_port)
        load.start()
        time.sleep(0.7)
        srv.proc.send_signal(signal.SIGQUIT)
        try:
            srv.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        load.finish()
        print(f"[figures] HTTPS load across QUIT: {load.ok} ok, {len(load.failed)} failed, "
              f"{load.refused} refused after the stop", flush=True)
        check(srv.proc.poll() is not None, "QUIT stops the server")
        load.check_none_failed("QUIT", 10)
    finally:
        srv.stop()


def plain_body_tests(d):
    srv = server(d)
    check(srv.start(), "plain body: the server starts")
    try:
        # Plain HTTP with a body to the TLS port, the body still coming after the 400: the
        # client reads the 400 and the server's FIN, and what it sends after that is read and
        # dropped (a close with unread input would answer it with a reset).
        s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=5)
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n"
                  + b"x" * 1000)
        data, err = recv_until_close(s)
        check(data.startswith(b"HTTP/1.1 400"),
              "plain HTTP with a body on the TLS port reads its 400: "
              + (data[:40].decode(errors="replace") or err))
        try:
            for _ in range(3):
                s.sendall(b"y" * 50000)
                time.sleep(0.15)
            err = ""
        except OSError as e:
            err = repr(e)
        s.close()
        check(not err, "the rest of the body is drained after the 400, not reset: " + err)
    finally:
        srv.stop()


def proxy_v2(src, src_port, dst_port):
    """A PROXY protocol v2 header: PROXY command, TCP over IPv4."""
    addrs = (socket.inet_aton(src) + socket.inet_aton("127.0.0.1")
             + src_port.to_bytes(2, "big") + dst_port.to_bytes(2, "big"))
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + len(addrs).to_bytes(2, "big")
            + addrs)


def proxy_tests(d):
    access = f"{d}/access.log"
    srv = server(d, flags="tls proxy", access=access, http_extra='header_timeout = "1s"\n')
    srv.write()
    t = run([PREFORKD, "-t", "-c", f"{d}/preforkd.toml"])
    check(t.returncode == 0, "-t accepts a \"tls proxy\" listener: " + t.stderr.decode().strip())
    check(srv.start(), "tls proxy: the server starts")
    try:
        # The balancer's way: the PROXY v2 header in clear text, then the TLS handshake.
        ctx = client_context(d)
        raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
        raw.sendall(proxy_v2("203.0.113.7", 45678, srv.tls_port))
        status, body = 0, b""
        try:
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                s.sendall(b"GET /page.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                status, _, body, _ = read_response(s, b"")
        except (OSError, EOFError) as e:
            print("tls proxy request: " + repr(e))
        check(status == 200 and body == PAGE, f"PROXY v2 header then TLS: {status}")

        def logged():
            try:
                return "203.0.113.7" in open(access).read()
            except OSError:
                return False
        check(wait_for(logged, 5), "the access log shows the PROXY header's address")

        # A silent connection: closed after http.header_timeout (1 s), not a fixed 10 s.
        s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=8)
        t0 = time.time()
        try:
            closed = s.recv(10) == b""
        except OSError:
            closed = True
        took = time.time() - t0
        s.close()
        check(closed and 0.7 <= took < 4,
              f"the PROXY header wait is bounded by http.header_timeout ({took:.2f} s)")
    finally:
        srv.stop()


def main():
    with tempfile.TemporaryDirectory() as d:
        make_ca(d)
        make_cert(d, "a", ["a.test"])
        prepare(d)
        only = os.environ.get("TLS_LIFE_ONLY", "")  # e.g. "quit,upgrade" while debugging
        for name, test in (("plain_body", plain_body_tests), ("proxy", proxy_tests),
                           ("quit", quit_tests), ("upgrade", upgrade_tests)):
            if not only or name in only.split(","):
                test(d)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
