#!/usr/bin/env python3
"""Per-site features with the real binary (issue 16): two [[site]] tables (one with a wildcard
name), each with its own error page, redirect, headers rule, fallback (one only), autoindex
(one only) and precompressed sidecars (one only); an unknown Host gets the first site's
behaviour; a site's own access_log in log.access_format json, then vhost_combined after a
reload; and -t refusing a bad site[1].redirects status with its line. Loopback only, every
wait bounded.

usage: sites_features_test.py PREFORKD   (exit 0: all passed)
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from harness import (check, failures, free_port, lines, pid_file_written, stop_process,
                     wait_for)

PREFORKD = sys.argv[1]


def get(port, host, path, **headers):
    """(status, headers as a lower-cased dict, body) of GET path with Host: host."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host, **headers})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def make_sites(d):
    for name in ("a", "b"):
        os.makedirs(f"{d}/www-{name}/dir")
        os.makedirs(f"{d}/www-{name}/assets")
        os.chmod(f"{d}/www-{name}", 0o755)
        os.chmod(f"{d}/www-{name}/dir", 0o755)
        os.chmod(f"{d}/www-{name}/assets", 0o755)
        write(f"{d}/www-{name}/index.html", f"index {name}\n")
        write(f"{d}/www-{name}/404.html", f"not found on {name}\n")
        write(f"{d}/www-{name}/.hidden", "secret\n")
        write(f"{d}/www-{name}/dir/listed-{name}.txt", "x\n")
        write(f"{d}/www-{name}/assets/app.js", f"var site = '{name}';\n")
        write(f"{d}/www-{name}/assets/app.js.gz", f"gzip bytes of {name}")


def config(d, port, fmt, bad_status=False):
    """The two sites; returns the text. Site a answers misses with its SPA fallback, site b
    lists folders; each has its own 404 page, redirect and headers (b inherits [http]'s)."""
    status = 200 if bad_status else 302
    return (f'[server]\nlisten = ["127.0.0.1:{port}"]\npid_file = "{d}/p.pid"\n'
            f'[workers]\nstart = 1\ngraceful_timeout = "5s"\n'
            f'[http]\nroot = "{d}/www-a"\nprecompressed = []\n'
            f'headers = [ {{ match = "/*", set = {{ "X-From" = "http" }} }} ]\n'
            f'[log]\nerror = "{d}/error.log"\naccess = "{d}/access.log"\n'
            f'access_format = "{fmt}"\n'
            f'[[site]]\nnames = ["a.test"]\nroot = "www-a"\n'
            f'error_pages = {{ 404 = "/404.html" }}\nfallback = "/index.html"\n'
            f'redirects = [ {{ match = "/old/*", to = "/new/$1", status = 301 }} ]\n'
            f'headers = [ {{ match = "/assets/*", set = {{ "Cache-Control" = "max-age=60" }} }} ]\n'
            f'precompressed = ["gzip"]\naccess_log = "{d}/a.log"\n'
            f'[[site]]\nnames = ["b.test", "*.b.test"]\nroot = "www-b"\n'
            f'error_pages = {{ 404 = "/404.html" }}\nautoindex = true\n'
            f'[[site.redirects]]\nmatch = "/old/*"\nto = "/b-new/$1"\nstatus = {status}\n')


def check_behaviour(port):
    # Fallback: a miss on site a is its index (200); on site b (no fallback) b's 404 page.
    s, h, body = get(port, "a.test", "/no/such/route")
    check(s == 200 and body == b"index a\n", f"a.test: a miss gets a's fallback ({s} {body!r})")
    s, h, body = get(port, "b.test", "/no/such/route")
    check(s == 404 and body == b"not found on b\n", f"b.test: a miss gets b's 404 page ({s})")
    # Error page: a dotfile is never the fallback; site a answers it with a's own page.
    s, h, body = get(port, "a.test", "/.hidden")
    check(s == 404 and body == b"not found on a\n", f"a.test: a dotfile gets a's 404 page ({s})")
    # Redirects: each site its own rule, status and query kept.
    s, h, _ = get(port, "a.test", "/old/x?q=1")
    check(s == 301 and h.get("location") == "/new/x?q=1", f"a.test: 301 /new/x?q=1 ({s} {h})")
    s, h, _ = get(port, "b.test", "/old/x?q=1")
    check(s == 302 and h.get("location") == "/b-new/x?q=1", f"b.test: 302 /b-new/x?q=1 ({s})")
    # Headers: a's own rule replaces [http]'s; b inherits [http]'s.
    s, h, _ = get(port, "a.test", "/assets/app.js")
    check(s == 200 and h.get("cache-control") == "max-age=60" and "x-from" not in h,
          f"a.test: a's headers rule only ({h})")
    s, h, _ = get(port, "b.test", "/assets/app.js")
    check(s == 200 and h.get("x-from") == "http" and "cache-control" not in h,
          f"b.test: [http]'s headers rule ({h})")
    # Autoindex: b lists its folder, a refuses it (403).
    s, h, body = get(port, "b.test", "/dir/")
    check(s == 200 and b"listed-b.txt" in body, f"b.test: /dir/ is listed ({s})")
    s, h, body = get(port, "a.test", "/dir/")
    check(s == 403, f"a.test: /dir/ is not listed ({s})")
    # Precompressed: a serves the .gz sidecar, b (precompressed = [] from [http]) does not.
    s, h, body = get(port, "a.test", "/assets/app.js", **{"Accept-Encoding": "gzip"})
    check(s == 200 and h.get("content-encoding") == "gzip" and body == b"gzip bytes of a",
          f"a.test: the gzip sidecar ({h.get('content-encoding')} {body!r})")
    s, h, body = get(port, "b.test", "/assets/app.js", **{"Accept-Encoding": "gzip"})
    check(s == 200 and "content-encoding" not in h and body == b"var site = 'b';\n",
          f"b.test: identity ({h.get('content-encoding')} {body!r})")
    # The wildcard name is site b; an unknown Host is the first site, a.
    s, h, body = get(port, "X.B.test:8080", "/dir/")
    check(s == 200 and b"listed-b.txt" in body, f"x.b.test (wildcard): b's listing ({s})")
    s, h, body = get(port, "nobody.test", "/no/such/route")
    check(s == 200 and body == b"index a\n", f"unknown Host: a's fallback ({s} {body!r})")
    s, h, body = get(port, "nobody.test", "/dir/")
    check(s == 403, f"unknown Host: a's (no) listing ({s})")


def main():
    d = tempfile.mkdtemp(prefix="preforkd-sitesfeat-")
    os.chmod(d, 0o755)  # the unprivileged workers read the sites' folders inside
    proc = None
    try:
        make_sites(d)
        port = free_port()

        # -t refuses a redirect status outside 3xx in the second site, with its line.
        bad = config(d, port, "json", bad_status=True)
        write(f"{d}/bad.toml", bad)
        line = bad.split("\n").index("status = 200") + 1
        r = subprocess.run([PREFORKD, "-t", "-c", f"{d}/bad.toml"], capture_output=True,
                           timeout=20)
        err = r.stderr.decode() + r.stdout.decode()
        check(r.returncode != 0 and
              f"{d}/bad.toml:{line}: site[1].redirects[0].status (200)" in err,
              f"-t names {d}/bad.toml:{line}: site[1].redirects[0].status: {err.strip()}")

        write(f"{d}/preforkd.toml", config(d, port, "json"))
        proc = subprocess.Popen([PREFORKD, "-F", "-c", f"{d}/preforkd.toml"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check(wait_for(lambda: pid_file_written(f"{d}/p.pid")),
              "preforkd started with two sites")
        if proc.poll() is not None:
            return 1
        check_behaviour(port)

        # Site a's requests (the unknown Host's too) go to a.log as JSON; b's to log.access.
        check(wait_for(lambda: len(lines(f"{d}/a.log")) >= 8), "a.log has site a's 8 lines")
        objs = []
        for raw in lines(f"{d}/a.log"):
            try:
                objs.append(json.loads(raw))
            except ValueError:
                check(False, "a.log: a JSON line: %r" % raw)
        hosts = {o.get("host") for o in objs}
        check(hosts == {"a.test", "nobody.test"}, f"a.log: only site a's hosts ({hosts})")
        check(any(o.get("path") == "/old/x" and o.get("query") == "q=1" and o.get("status") == 301
                  for o in objs), "a.log: the redirect's line with path, query, status")
        shared = lines(f"{d}/access.log")
        check(shared and all(b'"host":"a.test"' not in l for l in shared) and
              any(b'"host":"b.test"' in l for l in shared),
              "log.access: site b's lines, none of a's")

        # A reload to vhost_combined: site a's own file gets that format.
        write(f"{d}/preforkd.toml", config(d, port, "vhost_combined"))
        before = len(lines(f"{d}/a.log"))
        proc.send_signal(signal.SIGHUP)

        def new_format():
            get(port, "a.test", "/index.html")
            return any(l.startswith(b"a.test:%d 127.0.0.1 - - [" % port)
                       for l in lines(f"{d}/a.log")[before:])
        check(wait_for(new_format), "a.log: vhost_combined lines after the reload")
        check_behaviour(port)  # the reloaded generation keeps each site's behaviour
    finally:
        stop_process(proc)
        shutil.rmtree(d, ignore_errors=True)
    print("FAILED: %d" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
