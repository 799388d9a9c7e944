#!/usr/bin/env python3
"""TLS end to end with the real binary: certificates made now with the openssl CLI, clients
are curl, openssl s_client and python's ssl module. Loopback only, every wait bounded.

usage: tls_test.py PREFORKD [ECHO]   (exit 0: all passed)
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import (check, finish, free_port, make_ca, make_cert, pid_file_written,  # noqa: E402
                     read_text, recv_all, recv_until_close, run, stop_process)

PREFORKD = sys.argv[1]
ECHO = sys.argv[2] if len(sys.argv) > 2 else None


def fingerprint(pem_text):
    r = run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], inp=pem_text)
    return r.stdout.decode().strip()


class server:
    def __init__(self, d, binary, tls_port, plain_port, certs, app_tables=""):
        self.d, self.binary = d, binary
        self.tls_port, self.plain_port = tls_port, plain_port
        self.certs, self.app_tables = certs, app_tables
        self.proc = None

    def config(self, certs=None):
        certs = certs if certs is not None else self.certs
        entries = ", ".join(f'{{ cert = "{c}.pem", key = "{c}.key" }}' for c in certs)
        listen = f'"127.0.0.1:{self.tls_port} tls"'
        if self.plain_port:
            listen += f', "127.0.0.1:{self.plain_port}"'
        return (f'[server]\nlisten = [{listen}]\npid_file = "{self.d}/p.pid"\n'
                f'[workers]\nstart = 2\ngraceful_timeout = "5s"\n'
                f'[log]\nerror = "{self.d}/error.log"\naccess = "off"\nlevel = "debug"\n'
                f'{self.app_tables}'
                f'[tls]\ncertificates = [{entries}]\nhandshake_timeout = "2s"\n')

    def write(self, certs=None):
        with open(f"{self.d}/preforkd.toml", "w") as f:
            f.write(self.config(certs))

    def start(self):
        self.write()
        self.proc = subprocess.Popen([self.binary, "-F", "-c", f"{self.d}/preforkd.toml"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        end = time.time() + 15
        while time.time() < end:
            if pid_file_written(f"{self.d}/p.pid"):
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        print(self.proc.stdout.read().decode() if self.proc.poll() is not None else "")
        return False

    def hup(self, settle=1.5):
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(settle)

    def stop(self):
        stop_process(self.proc)

    def error_log(self):
        return read_text(f"{self.d}/error.log")


def served_cert(port, servername, d):
    r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", servername,
             "-CAfile", f"{d}/ca.pem"], inp=b"", timeout=10)
    out = r.stdout.decode(errors="replace")
    begin = out.find("-----BEGIN CERTIFICATE-----")
    end = out.find("-----END CERTIFICATE-----")
    if begin < 0 or end < 0:
        return ""
    return fingerprint(out[begin:end + 25].encode() + b"\n")


def https_get(port, d, host="a.test", path="/index.html"):
    ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = recv_all(s)
    return data


def early_request_with_finished(port, d, host="a.test"):
    """TLS 1.3 through memory BIOs: the client's Finished and its first request leave in ONE
    send, so the server reads both at once; then three pipelined requests in ONE record.
    Returns everything the server sent back until its close."""
    ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    req = f"GET /index.html HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    last = f"GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    raw.sendall(outgoing.read())
                chunk = raw.recv(65536)
                if not chunk:
                    return b""
                incoming.write(chunk)
        obj.write(req)  # queued behind the Finished still in `outgoing`
        raw.sendall(outgoing.read())
        data = b""

        def pump():
            nonlocal data
            chunk = raw.recv(65536)
            if chunk:
                incoming.write(chunk)
            else:
                incoming.write_eof()
            while True:
                try:
                    got = obj.read(65536)
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    break
                if not got:
                    break
                data += got
            return bool(chunk)

        while data.count(b"HTTP/1.1 200") < 1 and pump():
            pass
        obj.write(req + req + last)  # one record: three pipelined requests
        raw.sendall(outgoing.read())
        while pump():
            pass
    return data


def http_tests(d):
    tls_port, plain_port = free_port(), free_port()
    www = f"{d}/www"
    os.makedirs(www)
    body = os.urandom(300000)  # more than one TLS record, binary
    with open(f"{www}/big.bin", "wb") as f:
        f.write(body)
    with open(f"{www}/index.html", "w") as f:
        f.write("<h1>hello over tls</h1>\n")
    os.chmod(d, 0o755)
    for p in (www, f"{www}/big.bin", f"{www}/index.html"):
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)

    srv = server(d, PREFORKD, tls_port, plain_port, ["a", "b"], f'[http]\nroot = "{www}"\n')
    srv.write()
    t = run([PREFORKD, "-t", "-c", f"{d}/preforkd.toml"])
    check(t.returncode == 0, "-t accepts the tls config: " + t.stderr.decode().strip())

    # -t with a key that does not match its certificate names the entry.
    srv.write(["a", "mismatch"])
    t = run([PREFORKD, "-t", "-c", f"{d}/preforkd.toml"])
    err = t.stderr.decode()
    check(t.returncode != 0 and "tls.certificates[1]" in err, "-t refuses a bad pair: " + err.strip())

    check(srv.start(), "the server starts with a tls listener")
    try:
        url = f"https://a.test:{tls_port}"
        resolve = f"a.test:{tls_port}:127.0.0.1"
        r = run(["curl", "-sS", "--cacert", f"{d}/ca.pem", "--resolve", resolve,
                 f"{url}/big.bin", "-o", f"{d}/got.bin"])
        got = open(f"{d}/got.bin", "rb").read() if os.path.exists(f"{d}/got.bin") else b""
        check(r.returncode == 0 and got == body, "curl over HTTPS: byte-exact 300 kB body "
              + r.stderr.decode().strip())

        # keep-alive: two requests, one connection.
        r = run(["curl", "-sS", "-v", "--cacert", f"{d}/ca.pem", "--resolve", resolve,
                 f"{url}/index.html", f"{url}/index.html"])
        err = r.stderr.decode()
        check(r.returncode == 0 and r.stdout.decode().count("hello over tls") == 2
              and "Re-using existing connection" in err, "keep-alive over TLS reuses the connection")

        # SNI picks the certificate.
        fa, fb = fingerprint(open(f"{d}/a.pem", "rb").read()), fingerprint(open(f"{d}/b.pem", "rb").read())
        check(served_cert(tls_port, "b.test", d) == fb, "SNI b.test gets b's certificate")
        check(served_cert(tls_port, "a.test", d) == fa, "SNI a.test gets a's certificate")
        check(served_cert(tls_port, "unknown.test", d) == fa, "an unknown name gets the first")

        # Resumption with a ticket, on a new connection.
        sess = f"{d}/sess.pem"
        base = ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_port}", "-servername",
                "a.test", "-CAfile", f"{d}/ca.pem", "-tls1_3", "-ign_eof"]
        # -ign_eof: wait for the server's close (Connection: close), so the TLS 1.3 ticket,
        # which comes after the handshake, is read before -sess_out writes the session.
        req = b"GET /index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        run(base + ["-sess_out", sess], inp=req)
        resumed = 0
        for _ in range(4):  # any worker must take it
            r = run(base + ["-sess_in", sess], inp=req)
            if "Reused, TLSv1.3" in r.stdout.decode():
                resumed += 1
        check(resumed == 4, f"resumption on new connections, any worker ({resumed}/4)")
        # A client that offers only its newest ticket (TLS 1.3 tickets are used once; wrk and
        # browsers do this) resumes every time: each resumed connection hands a new one.
        chain, cur = [], sess
        for i in range(3):
            nxt = f"{d}/sess{i}.pem"
            r = run(base + ["-sess_in", cur, "-sess_out", nxt], inp=req)
            fresh = os.path.exists(nxt) and open(nxt).read() != open(cur).read()
            chain.append("Reused, TLSv1.3" in r.stdout.decode() and fresh)
            cur = nxt
        check(all(chain), f"each resumed connection hands out a new ticket that resumes ({chain})")

        # Plain HTTP to the TLS port: a plain 400 saying so.
        with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data, _ = recv_until_close(s)
        check(data.startswith(b"HTTP/1.1 400") and b"https" in data.lower(),
              "plain HTTP on the TLS port gets a plain 400: " + data[:60].decode(errors="replace"))

        # A garbage and a silent handshake do not disturb another client.
        g = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
        g.sendall(b"\x16\x03\x01\x00")  # the start of a record, then nothing
        silent = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
        t0 = time.time()
        ok = b"hello over tls" in https_get(tls_port, d)
        check(ok and time.time() - t0 < 1.5, "a slow handshake does not delay another client")
        silent.settimeout(5)
        t0 = time.time()
        try:
            closed = silent.recv(10) == b""
        except OSError:
            closed = True
        check(closed and time.time() - t0 < 4, "handshake_timeout closes the silent connection")
        g.close()
        silent.close()

        # HUP swapping certificates under a short TLS load: no failed request.
        make_cert(d, "a2", ["a.test"])
        stop = threading.Event()
        counts = {"ok": 0, "bad": 0, "errors": []}
        lock = threading.Lock()

        def client():
            while not stop.is_set():
                try:
                    good = b"hello over tls" in https_get(tls_port, d)
                except Exception as e:  # noqa: BLE001
                    good = False
                    with lock:
                        counts["errors"].append(repr(e))
                with lock:
                    counts["ok" if good else "bad"] += 1

        threads = [threading.Thread(target=client) for _ in range(3)]
        for th in threads:
            th.start()
        time.sleep(0.5)
        srv.write(["a2", "b"])
        srv.hup(settle=2.0)
        stop.set()
        for th in threads:
            th.join(10)
        check(counts["bad"] == 0 and counts["ok"] > 10,
              f"HUP swaps certificates under load: {counts['ok']} ok, {counts['bad']} failed "
              + "; ".join(counts["errors"][:3]))
        fa2 = fingerprint(open(f"{d}/a2.pem", "rb").read())
        check(served_cert(tls_port, "a.test", d) == fa2, "after the HUP, new connections get a2")

        # A ticket from before the reload still resumes after it.
        r = run(base + ["-sess_in", sess], inp=req)
        check("Reused, TLSv1.3" in r.stdout.decode(), "resumption survives a HUP")

        # A bad cert file on HUP changes nothing.
        with open(f"{d}/broken.pem", "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        with open(f"{d}/broken.key", "w") as f:
            f.write("nothing\n")
        srv.write(["broken"])
        srv.hup(settle=1.0)
        check(served_cert(tls_port, "a.test", d) == fa2 and b"hello" in https_get(tls_port, d),
              "a bad certificate on HUP changes nothing running")
        check("tls.certificates[0]" in srv.error_log(), "the failed reload names tls.certificates[0]")

        # sslscan: only TLS 1.2 and 1.3, and AEAD-only ciphers in 1.2.
        if shutil.which("sslscan"):
            r = run(["sslscan", "--no-colour", f"127.0.0.1:{tls_port}"], timeout=120)
            out = r.stdout.decode(errors="replace")
            protocols = {}
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1",
                                                     "TLSv1.2", "TLSv1.3"):
                    protocols[parts[0]] = parts[1]
            enabled = sorted(p for p, v in protocols.items() if v == "enabled")
            check(enabled == ["TLSv1.2", "TLSv1.3"], f"sslscan: only TLS 1.2 and 1.3 ({enabled})")
            weak = [line for line in out.splitlines()
                    if line.split()[:2] in (["Accepted", "TLSv1.2"], ["Preferred", "TLSv1.2"])
                    and not ("GCM" in line or "CHACHA20" in line)]
            accepted12 = [line for line in out.splitlines() if "TLSv1.2" in line
                          and line.split()[:1] in (["Accepted"], ["Preferred"])]
            check(accepted12 and not weak, "sslscan: TLS 1.2 ciphers are AEAD only "
                  + "; ".join(weak[:3]))
        else:
            print("skip sslscan (not installed)")

        # Bytes OpenSSL has already taken from the socket (read-ahead) get no EPOLLIN edge:
        # a request read together with the handshake's Finished, and pipelined requests in
        # one record, are all served without the client sending anything more.
        got = early_request_with_finished(tls_port, d)
        check(got.count(b"hello over tls") == 4,
              f"a request with the Finished, then 3 pipelined in one record: {got.count(b'hello over tls')} of 4")

        log = srv.error_log()
        check(f"127.0.0.1:{tls_port} tls" in log and "tls: send path " in log,
              "the start-up log names the tls listener and each worker's send path")

        # Status counters.
        r = run(["curl", "-sS", f"http://127.0.0.1:{plain_port}/server-status?json"])
        js = r.stdout.decode()
        check('"tls_handshakes": ' in js and '"tls_handshakes": 0,' not in js,
              "status JSON totals count tls handshakes: " + js[js.find('"totals"'):].strip())
    finally:
        srv.stop()


def echo_tests(d):
    port = free_port()
    os.chmod(d, 0o755)
    srv = server(d, ECHO, port, None, ["a"], '[echo]\nprefix = "> "\n')
    check(srv.start(), "echo starts with a tls listener")
    try:
        # -quiet: the handshake's chatter goes to stderr, the echoed bytes to stdout; the
        # client stays until killed, so read the one line and stop it.
        p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                              "-servername", "a.test", "-CAfile", f"{d}/ca.pem", "-quiet",
                              "-verify_return_error"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        timer = threading.Timer(10, p.kill)
        timer.start()
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        out = p.stdout.readline().decode(errors="replace")
        timer.cancel()
        p.kill()
        p.wait()
        check("> hello" in out, "echo over TLS with openssl s_client: " + out.strip()[:80])
    finally:
        srv.stop()


def main():
    with tempfile.TemporaryDirectory() as d:
        make_ca(d)
        make_cert(d, "a", ["a.test", "www.a.test"])
        make_cert(d, "b", ["b.test"])
        make_cert(d, "other", ["other.test"])
        # b's certificate with other's key: a pair that does not match.
        os.link(f"{d}/b.pem", f"{d}/mismatch.pem")
        os.link(f"{d}/other.key", f"{d}/mismatch.key")
        http_tests(d)
        if ECHO:
            e = os.path.join(d, "echo")
            os.makedirs(e)
            for f in ("ca.pem", "a.pem", "a.key"):
                os.link(f"{d}/{f}", f"{e}/{f}")
            echo_tests(e)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
