#!/usr/bin/env python3
"""log.access_format and http.charset with the real binary (issue 16 items 6 and 7): JSON lines
over plain HTTP and HTTPS (the tls field), vhost_combined after a reload, charset on text
types and turned off by a reload, and -t refusing a bad format with file:line. Certificates
are made now with the openssl CLI; loopback only, every wait bounded.

usage: access_format_test.py PREFORKD   (exit 0: all passed)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from harness import (check, failures, free_port, lines, pid_file_written, run, stop_process,
                     wait_for)

PREFORKD = sys.argv[1]


def curl(url, *extra):
    r = run(["curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-w",
             "%{http_code} %{content_type}", *extra, url])
    return r.stdout.decode()


def main():
    d = tempfile.mkdtemp(prefix="preforkd-accessfmt-")
    proc = None
    try:
        os.makedirs(f"{d}/www")
        with open(f"{d}/www/index.html", "w") as f:
            f.write("<p>hello</p>\n")
        with open(f"{d}/www/data.bin", "wb") as f:
            f.write(b"\0" * 64)
        r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{d}/k.pem", "-out",
                 f"{d}/c.pem", "-days", "30", "-subj", "/CN=localhost", "-addext",
                 "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        check(r.returncode == 0, "openssl made a certificate")
        plain, tls = free_port(), free_port()
        log = f"{d}/access.log"

        def config(fmt, charset=None):
            http = f'[http]\nroot = "{d}/www"\n'
            if charset is not None:
                http += f'charset = "{charset}"\n'
            return (f'[server]\nlisten = ["127.0.0.1:{plain}", "127.0.0.1:{tls} tls"]\n'
                    f'pid_file = "{d}/p.pid"\n[workers]\nstart = 1\ngraceful_timeout = "5s"\n'
                    f'{http}'
                    f'[log]\nerror = "{d}/error.log"\naccess = "{log}"\n'
                    f'access_format = "{fmt}"\n'
                    f'[tls]\ncertificates = [{{ cert = "c.pem", key = "k.pem" }}]\n')

        # -t refuses a bad format, naming the file, the line and the key.
        bad = config("xml")
        with open(f"{d}/bad.toml", "w") as f:
            f.write(bad)
        line = bad.split("\n").index('access_format = "xml"') + 1
        r = run([PREFORKD, "-t", "-c", f"{d}/bad.toml"])
        err = r.stderr.decode() + r.stdout.decode()
        check(r.returncode != 0 and f"{d}/bad.toml:{line}: log.access_format" in err,
              "-t refuses access_format = \"xml\" with file:line: " + err.strip())

        with open(f"{d}/preforkd.toml", "w") as f:
            f.write(config("json"))
        proc = subprocess.Popen([PREFORKD, "-F", "-c", f"{d}/preforkd.toml"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check(wait_for(lambda: pid_file_written(f"{d}/p.pid")),
              "preforkd started")

        # charset: on text types by default, never on others.
        got = curl(f"https://127.0.0.1:{tls}/index.html?x=%22y", "-A", 'agent "q"\\')
        check(got == "200 text/html; charset=utf-8", "HTTPS html has charset=utf-8: " + got)
        got = curl(f"http://127.0.0.1:{plain}/data.bin", "-e", "http://ref/")
        check(got == "200 application/octet-stream", "binary has no charset: " + got)

        check(wait_for(lambda: len(lines(log)) >= 2), "two access log lines")
        objs = []
        for raw in lines(log):
            try:
                objs.append(json.loads(raw))
            except ValueError:
                check(False, "a valid JSON line: %r" % raw)
        if len(objs) >= 2:
            a, b = objs[0], objs[1]
            check(a["tls"] in ("TLSv1.3", "TLSv1.2"), "tls version on HTTPS: %r" % a["tls"])
            check(b["tls"] is None, "tls null on plain HTTP")
            check(a["method"] == "GET" and a["path"] == "/index.html" and a["query"] == "x=%22y",
                  "method, path and query apart: %r" % a)
            check(a["user_agent"] == 'agent "q"\\', "user agent unescaped by json: %r" % a)
            check(a["status"] == 200 and a["bytes"] == 13 and a["client"] == "127.0.0.1",
                  "status, bytes, client")
            check(a["host"] == f"127.0.0.1:{tls}", "host: %r" % a["host"])
            check(isinstance(a["duration_us"], int) and 0 <= a["duration_us"] < 10_000_000,
                  "duration_us: %r" % a["duration_us"])
            check(len(a["time"]) == 24 and a["time"].endswith("Z") and a["time"][19] == ".",
                  "ISO 8601 time with ms: %r" % a["time"])
            check(b["referer"] == "http://ref/" and b["bytes"] == 64, "referer and bytes")

        # A reload switches to vhost_combined and turns the charset off.
        with open(f"{d}/preforkd.toml", "w") as f:
            f.write(config("vhost_combined", charset=""))
        before = len(lines(log))
        proc.send_signal(signal.SIGHUP)

        def reloaded():
            return curl(f"http://127.0.0.1:{plain}/index.html") == "200 text/html"
        check(wait_for(reloaded), "after the reload html has no charset")
        curl(f"http://127.0.0.1:{plain}/index.html", "-H", "Host: WWW.Example.ORG:81")
        check(wait_for(lambda: any(l.startswith(b"www.example.org:%d " % plain)
                                   for l in lines(log)[before:])),
              "vhost_combined line with the host and the listener's port")
        r = run(["curl", "-s", "--max-time", "10", "-o", "/dev/null", "-0", "-H", "Host:",
                 f"http://127.0.0.1:{plain}/index.html"])
        check(wait_for(lambda: any(l.startswith(b"127.0.0.1:%d 127.0.0.1 - - [" % plain)
                                   for l in lines(log)[before:])),
              "vhost_combined without Host names the listener")
    finally:
        stop_process(proc)
        shutil.rmtree(d, ignore_errors=True)
    print("FAILED: %d" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
