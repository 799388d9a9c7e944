#!/usr/bin/env python3
"""Content codings end to end with the real binary (issue 16 items 2 and 3): precompressed
sidecars chosen by Accept-Encoding q-values, Vary, Range, conditionals and HEAD on the chosen
representation, and compression on the fly into the shared cache. Loopback only, every wait
bounded. Decoders: python's gzip, python3-brotli, the zstd CLI.

usage: encoding_test.py PREFORKD   (exit 0: all passed)
"""
import gzip
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

try:
    import brotli
except ImportError:  # a python without Debian's dist-packages (pyenv): use the system one
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import (check, finish, free_port, pid_file_written, read_text, recv_all,  # noqa: E402
                     stop_process)

PREFORKD = sys.argv[1]


def request(port, path, headers=None, method="GET"):
    """One request on its own connection: (status, {lower name: value}, body)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: t.test", "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    status = int(head_lines[0].split()[1])
    hdrs = {}
    for line in head_lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        hdrs[k] = (hdrs[k] + ", " + v.strip()) if k in hdrs else v.strip()
    return status, hdrs, body


def zstd_compress(data):
    return subprocess.run(["zstd", "-q", "-c", "-19"], input=data, capture_output=True,
                          check=True).stdout


def zstd_decompress(data):
    return subprocess.run(["zstd", "-q", "-d", "-c"], input=data, capture_output=True,
                          check=True).stdout


class server:
    def __init__(self, d, port, http_extra, workers=2):
        self.d, self.port, self.http_extra, self.workers = d, port, http_extra, workers
        self.proc = None

    def write(self):
        with open(f"{self.d}/preforkd.toml", "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{self.port}"]\npid_file = "{self.d}/p.pid"\n'
                    f'[workers]\nstart = {self.workers}\nmin_spare = {self.workers}\n'
                    f'max_spare = {self.workers}\nmax = {self.workers}\ngraceful_timeout = "5s"\n'
                    f'[log]\nerror = "{self.d}/error.log"\naccess = "off"\nlevel = "info"\n'
                    f'[http]\nroot = "{self.d}/www"\n{self.http_extra}')

    def start(self):
        self.write()
        try:
            os.unlink(f"{self.d}/p.pid")
        except OSError:
            pass
        self.proc = subprocess.Popen([PREFORKD, "-F", "-c", f"{self.d}/preforkd.toml"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        end = time.time() + 15
        while time.time() < end:
            if pid_file_written(f"{self.d}/p.pid"):
                try:
                    request(self.port, "/healthz")
                    return True
                except OSError:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        print(self.proc.stdout.read().decode() if self.proc.poll() is not None else "")
        return False

    def stop(self):
        stop_process(self.proc)

    def error_log(self):
        return read_text(f"{self.d}/error.log")


def write(path, data, mtime=None):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def text(n, seed):
    words = [b"alpha", b"beta", b"gamma", b"delta", b"<div>", b"</div>", b"epsilon", seed]
    out, i, size = [], 0, 0
    while size < n:
        w = words[(i * 7 + i // 3) % len(words)]
        out.append(w)
        size += len(w) + 1
        i += 1
    return b" ".join(out)[:n]


def sidecar_tests(port, www):
    page = open(f"{www}/page.html", "rb").read()
    br = open(f"{www}/page.html.br", "rb").read()
    gz = open(f"{www}/page.html.gz", "rb").read()
    zs = open(f"{www}/page.html.zst", "rb").read()

    st, h, b = request(port, "/page.html", {"Accept-Encoding": "gzip, deflate, br, zstd"})
    check(st == 200 and h.get("content-encoding") == "br" and b == br,
          "equal q-values: br (the server's first preference)")
    check(h.get("content-type", "").startswith("text/html"), "a sidecar keeps the original's type")
    check(h.get("vary") == "Accept-Encoding", "Vary on the br answer")
    check(h.get("content-length") == str(len(br)), "Content-Length is the sidecar's")
    br_etag = h.get("etag")

    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br;q=0.5, gzip;q=0.9, zstd;q=0.1"})
    check(st == 200 and h.get("content-encoding") == "gzip" and b == gz and
          gzip.decompress(b) == page, "q-values: gzip;q=0.9 beats br;q=0.5")
    gz_etag = h.get("etag")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "ZSTD;Q=1, br;q=0.999"})
    check(h.get("content-encoding") == "zstd" and b == zs and zstd_decompress(b) == page,
          "zstd chosen, case-insensitive coding and q")
    zs_etag = h.get("etag")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "x-gzip"})
    check(h.get("content-encoding") == "gzip", "x-gzip counts as gzip")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "*;q=0.5, br;q=0"})
    check(h.get("content-encoding") in ("zstd", "gzip"), "* covers codings not named; br;q=0 refused")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br;q=0.5, identity"})
    check(st == 200 and "content-encoding" not in h and b == page,
          "identity (q=1) beats br;q=0.5")
    id_etag = h.get("etag")
    check(h.get("vary") == "Accept-Encoding", "Vary on the identity answer of a file with sidecars")
    st, h, b = request(port, "/page.html")
    check(st == 200 and "content-encoding" not in h and b == page and
          h.get("vary") == "Accept-Encoding", "no Accept-Encoding: identity, with Vary")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "identity;q=0, *;q=0"})
    check(st == 200 and "content-encoding" not in h and b == page,
          "everything refused: identity anyway (no 406, as nginx and Caddy)")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br;q=2, gzip;q=abc, deflate"})
    check(st == 200 and "content-encoding" not in h, "malformed q-values: those members ignored")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": ""})
    check("content-encoding" not in h, "an empty Accept-Encoding asks for identity")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "gzip;q=0.1",
                                            "X-Other": "1", "accept-encoding": "br;q=0.2"})
    check(h.get("content-encoding") == "br", "repeated Accept-Encoding lines are one list")

    tags = [br_etag, gz_etag, zs_etag, id_etag]
    check(all(tags) and len(set(tags)) == 4, f"four distinct ETags: {tags}")

    # Range on the br representation.
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br", "Range": "bytes=10-29"})
    check(st == 206 and h.get("content-encoding") == "br" and b == br[10:30] and
          h.get("content-range") == f"bytes 10-29/{len(br)}", "Range applies to the br bytes")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br", "Range": "bytes=10-29",
                                            "If-Range": br_etag})
    check(st == 206, "If-Range with the br ETag: 206")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br", "Range": "bytes=10-29",
                                            "If-Range": id_etag})
    check(st == 200 and b == br, "If-Range with the identity ETag on br: the whole br")
    # Conditionals on the chosen representation.
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br", "If-None-Match": br_etag})
    check(st == 304 and h.get("etag") == br_etag and h.get("vary") == "Accept-Encoding" and
          b == b"", "304 on the br ETag, with Vary")
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "gzip", "If-None-Match": br_etag})
    check(st == 200 and h.get("content-encoding") == "gzip", "the br ETag does not match gzip")
    st, h, b = request(port, "/page.html", {"If-None-Match": id_etag})
    check(st == 304, "304 on the identity ETag")
    # HEAD
    st, h, b = request(port, "/page.html", {"Accept-Encoding": "br"}, method="HEAD")
    check(st == 200 and h.get("content-encoding") == "br" and
          h.get("content-length") == str(len(br)) and b == b"", "HEAD: the br head, no body")
    # The sidecar itself, asked for by name.
    st, h, b = request(port, "/page.html.gz", {"Accept-Encoding": "gzip"})
    check(st == 200 and "content-encoding" not in h and b == gz,
          "page.html.gz by name: a plain file")
    # A stale sidecar (older than its file) is not used; a file without usable sidecars has
    # no Vary.
    st, h, b = request(port, "/stale.bin", {"Accept-Encoding": "br"})
    check(st == 200 and "content-encoding" not in h and "vary" not in h,
          "a sidecar older than its file is ignored")
    st, h, b = request(port, "/plain.bin", {"Accept-Encoding": "br, gzip"})
    check(st == 200 and "vary" not in h and "content-encoding" not in h,
          "a file without sidecars: unchanged (no Vary)")
    # A large sidecar goes out with sendfile like any file: a 200 KiB one.
    big_br = open(f"{www}/big.txt.br", "rb").read()
    st, h, b = request(port, "/big.txt", {"Accept-Encoding": "br"})
    check(st == 200 and b == big_br and brotli.decompress(b) == open(f"{www}/big.txt", "rb").read(),
          "a large sidecar (sendfile) arrives whole")
    # A sidecar added later is seen within a second or two (revalidation).
    write(f"{www}/late.html.gz", gzip.compress(open(f"{www}/late.html", "rb").read()),
          time.time() + 1)
    end, got = time.time() + 6, None
    while time.time() < end:
        st, h, b = request(port, "/late.html", {"Accept-Encoding": "gzip"})
        got = h.get("content-encoding")
        if got == "gzip":
            break
        time.sleep(0.2)
    check(got == "gzip", "a sidecar added later is served within seconds")


def wait_for_encoding(port, path, enc, limit=20):
    end = time.time() + limit
    first = None
    while time.time() < end:
        st, h, b = request(port, path, {"Accept-Encoding": enc})
        if first is None:
            first = (st, h, b)
        if h.get("content-encoding") == enc:
            return first, (st, h, b)
        time.sleep(0.1)
    return first, None


def cache_tests(d, port, www, cache):
    js = open(f"{www}/app.js", "rb").read()
    first, got = wait_for_encoding(port, "/app.js", "br")
    check(first[0] == 200 and first[2] in (js,) + ((got[2],) if got else ()) and
          first[1].get("vary") == "Accept-Encoding", "first answer (identity while it compresses) has Vary")
    check(got is not None and brotli.decompress(got[2]) == js,
          "a later answer is br from the cache and decodes to the file")
    if got:
        check(got[1].get("content-type", "").startswith(("application/javascript", "text/javascript")),
              "the cached answer keeps the original's type")
        etag = got[1].get("etag")
        st, h, b = request(port, "/app.js", {"Accept-Encoding": "br", "If-None-Match": etag})
        check(st == 304, "304 on the cached copy's ETag")
        st, h, b = request(port, "/app.js", {"Accept-Encoding": "br", "Range": "bytes=0-9"})
        check(st == 206 and b == got[2][:10], "Range on the cached copy")
    first, got = wait_for_encoding(port, "/style.css", "gzip")
    check(got is not None and gzip.decompress(got[2]) == open(f"{www}/style.css", "rb").read(),
          "gzip on the fly, cached, decodes to the file")
    names = [n for n in os.listdir(cache) if not n.startswith(".tmp-")]
    check(len([n for n in names if n.endswith(".br")]) == 1 and
          len([n for n in names if n.endswith(".gz")]) == 1,
          f"one copy per file version and coding in the cache folder: {names}")
    st, h, b = request(port, "/tiny.txt", {"Accept-Encoding": "br"})
    check("vary" not in h and "content-encoding" not in h, "under 1 KiB: not compressed")
    st, h, b = request(port, "/photo.bin", {"Accept-Encoding": "br"})
    check("vary" not in h, "not a text type: not compressed")
    # A new version of the file gets a new copy.
    write(f"{www}/app.js", js + b"\n// v2\n", time.time() + 2)
    end, ok = time.time() + 20, False
    while time.time() < end and not ok:
        st, h, b = request(port, "/app.js", {"Accept-Encoding": "br"})
        ok = h.get("content-encoding") == "br" and brotli.decompress(b) == js + b"\n// v2\n"
        time.sleep(0.1)
    check(ok, "a changed file is compressed again (new ETag, new copy)")


def threads_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def thread_tests(srv):
    """The compression thread lives in workers only: the supervisor, which forks, stays
    single-threaded (a fork from a threaded process copies only the calling thread)."""
    check(threads_of(srv.proc.pid) == 1, "the supervisor has one thread after compressing")
    try:
        with open(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children") as f:
            workers = [int(p) for p in f.read().split()]
    except OSError:
        workers = []
    counts = [threads_of(w) for w in workers]
    check(any(n == 2 for n in counts) and all(n in (1, 2) for n in counts),
          f"a worker that compressed has its one compression thread: {counts}")


def shared_cache_test(d, port, www, cache):
    """Another server (other workers, nothing asked yet) finds the copies at once."""
    st, h, b = request(port, "/style.css", {"Accept-Encoding": "gzip"})
    check(h.get("content-encoding") == "gzip" and
          gzip.decompress(b) == open(f"{www}/style.css", "rb").read(),
          "new workers answer from the copy another process made, at the first request")


def main():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        www, cache = f"{d}/www", f"{d}/cache"
        os.makedirs(www)
        os.makedirs(cache)
        if os.getuid() == 0:  # workers run as nobody: the cache belongs to them
            os.chown(cache, pwd.getpwnam("nobody").pw_uid, -1)
        os.chmod(www, 0o755)
        now = time.time() - 100
        page = text(20000, b"page")
        write(f"{www}/page.html", page, now)
        write(f"{www}/page.html.br", brotli.compress(page), now + 1)
        write(f"{www}/page.html.gz", gzip.compress(page), now + 1)
        write(f"{www}/page.html.zst", zstd_compress(page), now + 1)
        write(f"{www}/stale.bin", os.urandom(3000), now)
        write(f"{www}/stale.bin.br", brotli.compress(b"old version"), now - 50)
        write(f"{www}/late.html", text(2000, b"late"), now)
        write(f"{www}/plain.bin", os.urandom(5000), now)
        big = text(600000, b"big")
        write(f"{www}/big.txt", big, now)
        write(f"{www}/big.txt.br", brotli.compress(big), now + 1)
        write(f"{www}/app.js", text(50000, b"js"), now)
        write(f"{www}/style.css", text(3000, b"css"), now)
        write(f"{www}/tiny.txt", b"tiny " * 100, now)
        write(f"{www}/photo.bin", text(5000, b"photo"), now)

        port = free_port()
        srv = server(d, port, f'compress = ["br", "gzip"]\ncompress_cache = "{cache}"\n')
        if not srv.start():
            check(False, "server starts")
            return 1
        try:
            sidecar_tests(port, www)
            cache_tests(d, port, www, cache)
            thread_tests(srv)
        finally:
            srv.stop()
        check("compress_cache" not in srv.error_log(), "no compression errors logged")
        port2 = free_port()
        srv2 = server(d, port2, f'compress = ["br", "gzip"]\ncompress_cache = "{cache}"\n')
        if srv2.start():
            try:
                shared_cache_test(d, port2, www, cache)
            finally:
                srv2.stop()
        # -t refuses bad keys with file:line.
        for extra, what in (('compress = ["lzma"]\n', "http.compress"),
                            ('precompressed = ["br", "br"]\n', "http.precompressed"),
                            (f'compress = ["br"]\ncompress_cache = "{d}/missing"\n',
                             "http.compress_cache"),
                            ('compress_cache_max = "lots"\n', "http.compress_cache_max")):
            bad = server(d, free_port(), extra)
            bad.write()
            r = subprocess.run([PREFORKD, "-t", "-c", f"{d}/preforkd.toml"], capture_output=True,
                               timeout=20)
            msg = (r.stdout + r.stderr).decode(errors="replace")
            check(r.returncode != 0 and "preforkd.toml:" in msg and what in msg,
                  f"-t refuses {extra.strip()!r}: {msg.strip()[:120]}")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
