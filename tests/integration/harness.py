"""Helpers shared by the python integration tests (each exists once here): the ok/FAIL
report, free loopback ports, bounded waits, a test CA and leaves made with the openssl CLI,
and stopping a preforkd started with subprocess.Popen by its pid.

A test in a subfolder imports it after
`sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))`, so that it
works from any working directory (ctest runs the scripts by their absolute path).
"""
import os
import signal
import socket
import subprocess
import time

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    """The exit status of a test that reported through check(), with the failures listed."""
    if failures:
        print(f"{len(failures)} failed:\n  " + "\n  ".join(failures))
        return 1
    print("all passed")
    return 0


def run(args, inp=None, timeout=20, check=False):
    return subprocess.run(args, input=inp, capture_output=True, timeout=timeout, check=check)


def free_port():
    """An ephemeral port free on 127.0.0.1 now (the kernel's pick)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(cond, seconds=15):
    """True as soon as cond() is, False when `seconds` pass first; polls every 50 ms."""
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def lines(path):
    """The non-empty lines of a log file (bytes), none while it does not exist."""
    try:
        with open(path, "rb") as f:
            return [l for l in f.read().split(b"\n") if l]
    except OSError:
        return []


def read_text(path):
    """A file's text, or "" while it does not exist (an error log not yet written)."""
    try:
        return open(path).read()
    except OSError:
        return ""


def recv_all(s):
    """Everything the peer sends until it closes the connection (a response to
    `Connection: close`), read 64 KiB at a time."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recv_until_close(s):
    """Like recv_all, but a reset or timeout ends the reading instead of raising: returns
    what came before it and the error's repr ("" after a clean close)."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, ""
            data += chunk
    except OSError as e:
        return data, repr(e)


def pid_file_written(path):
    """preforkd writes its pid file once its listeners are bound: it is ready."""
    return os.path.exists(path) and os.path.getsize(path) > 0


def stop_process(proc, seconds=10):
    """TERM by pid, then KILL if it has not exited within `seconds`; reaps it."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_ca(d, cn="preforkd test CA", **run_args):
    """ca.pem and ca.key in d: a P-256 self-signed CA for 30 days."""
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "30",
         "-subj", f"/CN={cn}"], **run_args)


def make_cert(d, name, dns, days=30, **run_args):
    """A leaf for `dns` signed by the CA; the key is 0600 (root's, as in production)."""
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={dns[0]}"],
        **run_args)
    ext = f"{d}/{name}.ext"
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + n for n in dns) + "\n")
    run(["openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem",
         "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/{name}.pem",
         "-days", str(days), "-extfile", ext], **run_args)
    os.chmod(f"{d}/{name}.key", 0o600)
