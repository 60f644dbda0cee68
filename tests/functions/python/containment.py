"""Containment probe (python3.x, handler `containment.handler`): a function that tries to get out of its
sandbox and reports what happened. The event names one attempt:

    {"read": [paths]}              read or list each path
    {"write": [paths]}             create a file at each path
    {"fill_tmp": true}             write /tmp full, 1 MB at a time
    {"tmp_write_mb": n,            write n MB to /tmp/big 1 MB at a time (each MB its own bytes), fsync
     "fsync": bool}                it if asked, read it back and check every MB, then remove it
    {"alloc_mb": n}                allocate and touch n MB
    {"fork_bomb": true}            fork until refused, then clean up
    {"kill": pid}                  signal pid (0, then SIGKILL)
    {"ptrace": pid}                PTRACE_ATTACH to pid
    {"connect": [host, port]}      open a TCP connection
    {"identity": true}             uid, gid, capabilities, no_new_privs, seccomp, listening sockets, …
    {"ticker": true}               start a background thread that ticks every 10 ms, then return
    {"ticks_since_return": true}   how many ticks happened after the previous invocation returned
    {"spin": seconds}              burn CPU for that long (wall clock) and report the CPU time it got

Each answer is {"env_id": <random per environment>, "results": {...}} with, per attempt, "ok" or the exception's type and errno.
"""

import ctypes
import errno
import os
import signal
import socket
import threading
import time
import uuid

ENV_ID = uuid.uuid4().hex
TICKS = []
RETURNED_AT = [None]


def _error(e):
    return {"error": type(e).__name__, "errno": errno.errorcode.get(getattr(e, "errno", None) or 0)}


def _read(path):
    try:
        if os.path.isdir(path):
            return {"ok": True, "listing": sorted(os.listdir(path))[:50]}
        with open(path, "rb") as f:
            return {"ok": True, "bytes": len(f.read(4096))}
    except OSError as e:
        return _error(e)


def _write(path):
    try:
        with open(path, "wb") as f:
            f.write(b"escaped")
        return {"ok": True}
    except OSError as e:
        return _error(e)


def _fill_tmp():
    chunk = b"x" * (1 << 20)
    written = 0
    try:
        with open("/tmp/fill", "wb") as f:
            while written < (20 << 30):
                f.write(chunk)
                f.flush()
                written += len(chunk)
        return {"ok": True, "written_mb": written >> 20}
    except OSError as e:
        result = _error(e)
        result["written_mb"] = written >> 20
        return result
    finally:
        try:
            os.remove("/tmp/fill")
        except OSError:
            pass


def _tmp_write(mb, fsync):
    path = "/tmp/big"
    written = 0
    try:
        with open(path, "wb") as f:
            for i in range(mb):
                f.write(bytes([i % 251]) * (1 << 20))
                written += 1
            if fsync:
                os.fsync(f.fileno())
        with open(path, "rb") as f:
            for i in range(mb):
                if f.read(1 << 20) != bytes([i % 251]) * (1 << 20):
                    return {"error": "mismatch", "at_mb": i, "written_mb": written}
            if f.read(1):
                return {"error": "longer than written", "written_mb": written}
        return {"ok": True, "written_mb": written, "verified_mb": mb}
    except OSError as e:
        result = _error(e)
        result["written_mb"] = written
        return result
    finally:
        try:
            os.remove(path)
        except OSError:
            pass


def _alloc(mb):
    blocks = []
    for _ in range(mb):
        block = bytearray(1 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        blocks.append(block)
    return {"ok": True, "allocated_mb": len(blocks)}


def _fork_bomb():
    children = []
    result = {}
    try:
        while len(children) < 5000:
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children.append(pid)
        result["ok"] = True
    except OSError as e:
        result = _error(e)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
    result["forked"] = len(children)
    return result


def _kill(pid):
    out = {}
    for sig in (0, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            out[str(int(sig))] = {"ok": True}
        except OSError as e:
            out[str(int(sig))] = _error(e)
    return out


def _ptrace(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    rc = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    if rc == 0:
        libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
        return {"ok": True}
    return {"error": "ptrace", "errno": errno.errorcode.get(ctypes.get_errno())}


def _tty():
    try:
        with open("/dev/tty", "wb"):
            return {"ok": True}
    except OSError as e:
        return _error(e)


def _lease(path):
    import fcntl
    try:
        with open(path, "rb") as f:
            fcntl.fcntl(f.fileno(), fcntl.F_SETLEASE, fcntl.F_RDLCK)
            return {"ok": True}
    except OSError as e:
        return _error(e)


def _connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return {"ok": True}
    except OSError as e:
        return _error(e)


def _listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return sorted(ports)


def _identity():
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "cap_eff": status.get("CapEff"),
        "cap_prm": status.get("CapPrm"),
        "cap_bnd": status.get("CapBnd"),
        "no_new_privs": status.get("NoNewPrivs"),
        "seccomp": status.get("Seccomp"),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "hostname": socket.gethostname(),
        "listening": _listening_ports(),
        "nofile": __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE),
        "cwd": os.getcwd(),
        "mounts": open("/proc/self/mounts").read().splitlines(),
    }


def _ticker():
    def run():
        while True:
            TICKS.append(time.monotonic())
            time.sleep(0.01)

    threading.Thread(target=run, daemon=True).start()
    return {"ok": True}


def _spin(seconds):
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < seconds:
        pass
    return {"wall": time.monotonic() - wall, "cpu": time.process_time() - cpu}


def handler(event, context):
    results = {}
    for path in event.get("read", []):
        results[f"read {path}"] = _read(path)
    for path in event.get("write", []):
        results[f"write {path}"] = _write(path)
    if event.get("fill_tmp"):
        results["fill_tmp"] = _fill_tmp()
    if "tmp_write_mb" in event:
        results["tmp_write"] = _tmp_write(int(event["tmp_write_mb"]), bool(event.get("fsync")))
    if "alloc_mb" in event:
        results["alloc"] = _alloc(int(event["alloc_mb"]))
    if event.get("fork_bomb"):
        results["fork_bomb"] = _fork_bomb()
    if "kill" in event:
        results["kill"] = _kill(int(event["kill"]))
    if "ptrace" in event:
        results["ptrace"] = _ptrace(int(event["ptrace"]))
    if event.get("kill_group"):
        os.kill(0, signal.SIGKILL)  # its own process group: it dies here
    if event.get("tty"):
        results["tty"] = _tty()
    if "lease" in event:
        results["lease"] = _lease(event["lease"])
    if "connect" in event:
        host, port = event["connect"]
        results["connect"] = _connect(host, int(port))
    if event.get("identity"):
        results["identity"] = _identity()
    if event.get("ticker"):
        results["ticker"] = _ticker()
    if "spin" in event:
        results["spin"] = _spin(float(event["spin"]))
    if event.get("ticks_since_return"):
        now = time.monotonic()
        since = RETURNED_AT[0]
        # Ticks well inside the idle gap: after the previous invocation returned, before this one began.
        idle = [t for t in TICKS if since is not None and since + 0.2 < t < now - 0.2]
        results["ticks_since_return"] = {"idle_seconds": now - since if since else None, "ticks": len(idle)}
    RETURNED_AT[0] = time.monotonic()
    return {"env_id": ENV_ID, "results": results}
