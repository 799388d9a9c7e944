#!/usr/bin/env python3
"""Sites over TLS (issue 16 with issue 14): SNI picks the certificate, Host picks the site.
Certificates are made now with the openssl CLI; loopback only, every wait bounded.

usage: sites_tls_test.py PREFORKD   (exit 0: all passed)
"""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import (check, failures, free_port, make_ca, make_cert,  # noqa: E402
                     pid_file_written, recv_all, stop_process)

PREFORKD = sys.argv[1]


def make_certs(d):
    strict = dict(timeout=30, check=True)  # a failed openssl step stops the test here
    make_ca(d, "preforkd sites test CA", **strict)
    for name in ("a", "b"):
        make_cert(d, name, [f"{name}.test", f"*.{name}.test"], **strict)


def get(port, d, sni, host):
    """GET / over TLS with SNI `sni` and Host `host`: (the certificate's CN, the body)."""
    ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return cn, body.decode(errors="replace") if head.startswith(b"HTTP/1.1 200") else "?"


def main():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)  # the unprivileged workers read the sites' folders inside
        make_certs(d)
        for name in ("a", "b"):
            os.makedirs(f"{d}/www-{name}")
            with open(f"{d}/www-{name}/index.html", "w") as f:
                f.write(f"site {name.upper()}\n")
            os.chmod(f"{d}/www-{name}/index.html", 0o644)
        port = free_port()
        with open(f"{d}/preforkd.toml", "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{port} tls"]\npid_file = "{d}/p.pid"\n'
                    f'[workers]\nstart = 2\ngraceful_timeout = "5s"\n'
                    f'[http]\nroot = "{d}/www-a"\n'
                    f'[log]\nerror = "{d}/error.log"\naccess = "off"\n'
                    f'[tls]\ncertificates = [{{ cert = "a.pem", key = "a.key" }},'
                    f' {{ cert = "b.pem", key = "b.key" }}]\n'
                    f'[[site]]\nnames = ["a.test"]\nroot = "www-a"\n'
                    f'[[site]]\nnames = ["b.test", "*.b.test"]\nroot = "www-b"\n')
        proc = subprocess.Popen([PREFORKD, "-F", "-c", f"{d}/preforkd.toml"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            end = time.time() + 15
            while time.time() < end and proc.poll() is None:
                if pid_file_written(f"{d}/p.pid"):
                    break
                time.sleep(0.05)
            check(proc.poll() is None, "the server starts with two sites on a tls listener")
            if proc.poll() is not None:
                print(proc.stdout.read().decode())
                return
            check(get(port, d, "a.test", "a.test") == ("a.test", "site A\n"), "a.test: A's cert, A")
            check(get(port, d, "b.test", "b.test") == ("b.test", "site B\n"), "b.test: B's cert, B")
            check(get(port, d, "x.b.test", "X.B.test:443") == ("b.test", "site B\n"),
                  "wildcard: B's cert, B")
            # SNI chooses the certificate only; Host chooses the site.
            check(get(port, d, "a.test", "b.test") == ("a.test", "site B\n"),
                  "SNI a.test with Host b.test: A's cert, site B")
            check(get(port, d, "b.test", "nobody.test")[1] == "site A\n",
                  "an unknown Host over TLS: the first site")
        finally:
            stop_process(proc)


main()
sys.exit(1 if failures else 0)
