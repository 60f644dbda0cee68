"""Helpers for the end-to-end suite: the real `nimbus` binary driven with boto3 and the AWS CLI.

The server contract these tests rely on (see also README/ARCHITECTURE):

    $NIMBUS_BIN serve --listen 127.0.0.1:0 --data-dir DIR --ready-file FILE --env-idle-secs N
        env NIMBUS_ROOT_ACCESS_KEY_ID / NIMBUS_ROOT_SECRET_ACCESS_KEY = the root credentials
        (without them the server creates credentials on first start, keeps them 0600 in DIR and prints them)
      FILE is written once the server listens; its first line is the API base URL (http://127.0.0.1:PORT),
      and a `sandbox=namespace|process` line names the isolation tier (`--sandbox auto|namespace|process`,
      or NIMBUS_SANDBOX; auto, the default, is namespace where the machine allows it). On the namespace
      tier a function's pids are those of its own pid namespace, not host pids.
      SIGTERM stops it: exit code 0, and every function process it started is gone.
      Its PATH starts with the test venv's bin, so `python3` (for python3.x functions) has boto3.
    One endpoint for every service: Lambda (REST-JSON, signing name `lambda`) and CloudWatch Logs
    (JSON 1.1, `X-Amz-Target: Logs_20140328.*`, signing name `logs`), SigV4-verified.
    $NIMBUS_BIN deploy|invoke|ls|logs ... --endpoint-url URL   (credentials from AWS_ACCESS_KEY_ID/…)

Each test module gets its own server (module-scoped `server`); tests that need special flags or a restart
start their own with `server_factory`. Every server is stopped with SIGTERM at the end and checked for a
clean exit and for leftover processes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Keep the developer's own AWS configuration (profiles, endpoints, credentials) out of every client and CLI
# call made by the tests: everything is passed explicitly.
for _k in list(os.environ):
    if _k.startswith("AWS_"):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = "/nonexistent/nimbus-e2e/aws-config"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/nimbus-e2e/aws-credentials"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "tests" / "functions"

ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/nimbus-e2e"
# The execution roles the suite's functions name: created at each server's first start (CreateFunction
# refuses a role that does not exist or does not trust Lambda, as on AWS).
SUITE_ROLES = ("nimbus-e2e", "x")
LAMBDA_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})
# What the suite's functions may call: read and invoke functions, SQS and Logs (no function changes).
SUITE_ROLE_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*", "lambda:InvokeFunction", "lambda:InvokeAsync"],
         "Resource": "*"},
        {"Effect": "Allow", "Action": ["sqs:*", "logs:*", "s3:*"], "Resource": "*"},
    ],
})
# Root credentials handed to the server through NIMBUS_ROOT_* (shaped like real AWS keys).
ROOT_KEY = "AKIANIMBUSE2ETEST001"
ROOT_SECRET = "nimbusE2eSecretKey/0123456789+abcdefghij"

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# How long a function process may linger after the server exited before it counts as leaked.
LEAK_GRACE = 3.0


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def unique_name(prefix: str) -> str:
    """A function name no other test uses (names are at most 64 characters on AWS)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def nimbus_bin() -> Path:
    path = Path(os.environ.get("NIMBUS_BIN") or REPO / "target" / "debug" / "nimbus")
    if not path.is_absolute():
        path = REPO / path
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"nimbus binary not found at {path}: build it with `cargo build --workspace --bins` or set "
            "NIMBUS_BIN (scripts/test does both)",
            pytrace=False,
        )
    return path


def venv_tool(name: str) -> str:
    """A console script of the test venv (aws, …): beside the running interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` not found: install tests/requirements.txt (scripts/test does)", pytrace=False)
    return found


# --------------------------------------------------------------------------------------------------------
# /proc helpers: which processes a server started, and whether they are still alive
# --------------------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time in ticks) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data.rsplit(")", 1)[1].split()
    return int(rest[1]), rest[0], int(rest[19])


def descendants(root_pid: int) -> dict[int, int]:
    """All live descendants of root_pid: {pid: start time}."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _proc_stat(int(entry))
        if st is None:
            continue
        children.setdefault(st[0], []).append(int(entry))
        starts[int(entry)] = st[2]
    found: dict[int, int] = {}
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = starts[child]
                todo.append(child)
    return found


def environment_processes(root_pid: int) -> dict[int, int]:
    """A server's descendants that belong to execution environments: all of them but the namespace tier's
    helpers (the zygote, the children it keeps ready for the next environments with the runtimes some of them
    have started ahead, and the pastas that connect those children's network namespaces; a pasta holds its
    namespace as fd 3)."""
    found = descendants(root_pid)
    helpers, slot_netns, pastas = set(), set(), {}
    for pid in found:
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm in ("nimbus-zygote", "nimbus-slot"):
                helpers.add(pid)
                if comm == "nimbus-slot":
                    slot_netns.add(os.readlink(f"/proc/{pid}/ns/net"))
                    helpers.update(descendants(pid))
            elif comm.startswith("passt"):
                pastas[pid] = os.readlink(f"/proc/{pid}/fd/3")
        except OSError:
            pass
    helpers.update(pid for pid, netns in pastas.items() if netns in slot_netns)
    return {pid: start for pid, start in found.items() if pid not in helpers}


def alive(pid: int, start: int | None) -> bool:
    """True if pid is still the same (non-zombie) process: pid and start time both match."""
    st = _proc_stat(pid)
    if st is None or st[1] in ("Z", "X"):
        return False
    return start is None or st[2] == start


def processes_using(path: Path) -> list[int]:
    """Live processes whose cwd, executable or command line lies under `path` (a server's data dir)."""
    prefix = str(path.resolve())
    me = os.getpid()
    hits = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        st = _proc_stat(pid)
        if st is None or st[1] in ("Z", "X"):
            continue
        refs = []
        for link in ("cwd", "exe"):
            try:
                refs.append(os.readlink(f"/proc/{pid}/{link}"))
            except OSError:
                pass
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                refs.extend(a.decode(errors="replace") for a in f.read().split(b"\0") if a)
        except OSError:
            pass
        if any(r == prefix or r.startswith(prefix + "/") for r in refs):
            hits.append(pid)
    return hits


def loop_devices_into(path: Path) -> dict[str, str]:
    """Loop devices whose backing file lies under `path` (a server's data dir, where the namespace tier's
    disk-backed /tmp images are), as {device: backing file}; the kernel appends " (deleted)" to the name of
    an unlinked image, which the tier unlinks as soon as it is attached."""
    prefix = str(path.resolve()) + "/"
    found = {}
    try:
        names = os.listdir("/sys/block")
    except OSError:
        return found
    for name in names:
        if not name.startswith("loop"):
            continue
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                backing = f.read().strip()
        except OSError:
            continue  # not bound
        if backing.startswith(prefix):
            found[f"/dev/{name}"] = backing
    return found


def describe_pid(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "?"
    return f"{pid} ({cmd})"


# --------------------------------------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------------------------------------


class NimbusServer:
    """One `nimbus serve` process on a data dir; can be stopped and started again on the same dir."""

    def __init__(self, workdir: Path, env_idle_secs: int = 300, credentials: bool = True,
                 extra_args: tuple[str, ...] = (), extra_env: dict | None = None, rootless=False,
                 prefix: tuple[str, ...] = (), tty: bool = False):
        # A rootless server (see rootless.py) runs as an unprivileged user in a workdir that user owns:
        # `rootless=True` (or "no-subids": without subordinate ids) sets that up for this server alone, a
        # `Rootless` shares one the caller cleans up.
        self.rootless = None
        self.owns_rootless = rootless is True or isinstance(rootless, str)
        if rootless:
            from rootless import Rootless
            if self.owns_rootless:
                self.rootless = Rootless(subids=rootless != "no-subids")
            else:
                self.rootless = rootless
            workdir = self.rootless.new_workdir()
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.rootless:
            self.rootless.prepare(self.data_dir)
        self.env_idle_secs = env_idle_secs
        self.credentials = credentials
        self.extra_args = tuple(extra_args)
        self.extra_env = dict(extra_env or {})
        # A command that execs the server (same pid), e.g. to start it in a more confined place.
        self.prefix = tuple(prefix)
        # Start it with a terminal of its own as its controlling terminal, as when run by hand.
        self.tty = tty
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.ready_lines: list[str] = []
        self.starts = 0
        self.log_path: Path | None = None
        # Processes to check after stop: {pid: start time or None}.
        self._watched: dict[int, int | None] = {}
        self.key = ROOT_KEY
        self.secret = ROOT_SECRET
        # The sandbox tier the server runs (`sandbox=` in the ready file): namespace or process.
        self.sandbox: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> "NimbusServer":
        assert self.proc is None, "server already running"
        self.starts += 1
        ready = self.workdir / f"ready-{self.starts}"
        self.log_path = self.workdir / f"server-{self.starts}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NIMBUS_"))}
        env["RUST_BACKTRACE"] = "1"
        # The server runs python3.x functions on the `python3` it finds on PATH: make that the test venv's
        # interpreter, which has boto3 (as Lambda's Python runtimes do), so the server need not install it.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
        if self.credentials:
            env["NIMBUS_ROOT_ACCESS_KEY_ID"] = ROOT_KEY
            env["NIMBUS_ROOT_SECRET_ACCESS_KEY"] = ROOT_SECRET
        env.update(self.extra_env)
        cmd = [
            str(nimbus_bin()), "serve",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir),
            "--ready-file", str(ready),
            "--env-idle-secs", str(self.env_idle_secs),
            *self.extra_args,
        ]
        cmd = [*self.prefix, *cmd]
        steps = []
        if self.rootless:
            cmd, env = self.rootless.command(cmd), self.rootless.env(env)
            steps.append(self.rootless.join_cgroups)
        stdin, terminal = subprocess.DEVNULL, None
        if self.tty:
            import fcntl
            import pty
            import termios
            self.tty_master, terminal = pty.openpty()
            stdin = terminal
            # After setsid (start_new_session), stdin becomes the session's controlling terminal.
            steps.append(lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=stdin, env=env,
                                         cwd=self.workdir, start_new_session=True,
                                         preexec_fn=(lambda: [step() for step in steps]) if steps else None)
        finally:
            log.close()
            if terminal is not None:
                os.close(terminal)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"nimbus serve exited with {code} before it was ready:\n{self.log_tail()}")
            try:
                text = ready.read_text()
            except FileNotFoundError:
                text = ""
            if "\n" in text and text.split("\n", 1)[0].strip():
                break
            if time.monotonic() > deadline:
                self._kill()
                raise RuntimeError(
                    f"nimbus serve wrote no ready file {ready} within {READY_TIMEOUT:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)
        self.ready_lines = [line.strip() for line in text.splitlines() if line.strip()]
        self.url = self.ready_lines[0].rstrip("/")
        self.sandbox = next((line.split("=", 1)[1] for line in self.ready_lines if line.startswith("sandbox=")), None)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", self.url), \
            f"first line of the ready file should be the API base URL, got {self.url!r}"
        if self.starts == 1:
            self.create_suite_roles()
        return self

    def create_suite_roles(self) -> None:
        """The execution roles the suite's functions name, trusting Lambda (see SUITE_ROLES)."""
        if not self.credentials:
            creds = (self.data_dir / "credentials").read_text()
            self.key = re.search(r"aws_access_key_id = (\S+)", creds).group(1)
            self.secret = re.search(r"aws_secret_access_key = (\S+)", creds).group(1)
        iam = self.client("iam")
        for name in SUITE_ROLES:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)
            iam.put_role_policy(RoleName=name, PolicyName="suite", PolicyDocument=SUITE_ROLE_POLICY)

    def stop(self) -> int:
        """SIGTERM, wait (bounded), return the exit code; remembers the processes to check for leaks."""
        assert self.proc is not None, "server not running"
        for pid, start in descendants(self.proc.pid).items():
            self._watched[pid] = start
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError(f"nimbus serve did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM:\n"
                                 f"{self.log_tail()}")
        self.proc = None
        return code

    def stop_cleanly(self) -> None:
        """Stop and assert what a good shutdown looks like: exit code 0 and no process left behind."""
        code = self.stop()
        assert code == 0, f"nimbus serve exited with {code} after SIGTERM (want 0):\n{self.log_tail()}"
        self.assert_no_leftovers()

    def restart(self) -> "NimbusServer":
        """Stop cleanly and start a new server on the same data dir (the URL may change)."""
        self.stop_cleanly()
        return self.start()

    def _kill(self) -> None:
        if self.proc is None:
            return
        for pid, start in descendants(self.proc.pid).items():
            self._watched[pid] = start
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None
        self._kill_watched()

    def _kill_watched(self) -> None:
        for pid in list(self._watched):
            if alive(pid, self._watched[pid]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def watch_pid(self, pid: int, start: int | None = None) -> None:
        """A function process (pid as reported by the function) that must be gone after the server stops."""
        self._watched[pid] = start

    def assert_no_leftovers(self) -> None:
        deadline = time.monotonic() + LEAK_GRACE
        while True:
            leaked = {pid for pid, start in self._watched.items() if alive(pid, start)}
            leaked.update(processes_using(self.data_dir))
            # An environment's /tmp disk (namespace tier) detaches when the environment and the server are gone.
            disks = loop_devices_into(self.data_dir)
            if not (leaked or disks) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if leaked:
            described = ", ".join(describe_pid(p) for p in sorted(leaked))
            for pid in leaked:  # clean up after the failure so they do not outlive the test run
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            raise AssertionError(f"processes left behind by nimbus serve: {described}")
        assert not disks, f"loop devices still backed by the stopped server's data dir: {disks}"
        self._watched.clear()

    def teardown(self) -> None:
        try:
            if self.proc is not None:
                self.stop_cleanly()
        finally:
            if self.owns_rootless:
                self.rootless.cleanup()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- clients --------------------------------------------------------------------------------------

    def client(self, service: str, key: str | None = None, secret: str | None = None,
               validate: bool = True, read_timeout: int = 300, session_token: str | None = None):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key or self.key,
            aws_secret_access_key=secret or self.secret,
            aws_session_token=session_token,
            # No retries: a test must see the first answer. A generous read timeout: invokes may sleep.
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=read_timeout,
                          connect_timeout=10, parameter_validation=validate),
        )

    def lambda_client(self, **kw):
        return self.client("lambda", **kw)

    def logs_client(self, **kw):
        return self.client("logs", **kw)

    def cli_env(self, key: str | None = None, secret: str | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": key or self.key,
            "AWS_SECRET_ACCESS_KEY": secret or self.secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": "/nonexistent/nimbus-e2e/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/nimbus-e2e/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        })
        return env

    def aws(self, *args: str, cwd: Path | None = None, parse: bool = True, check: bool = True,
            timeout: float = 120):
        """Run the AWS CLI against this server; returns parsed JSON output (or the CompletedProcess)."""
        cmd = [venv_tool("aws"), *args, "--endpoint-url", self.url, "--output", "json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.cli_env(), cwd=cwd,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        if not parse:
            return proc
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def nimbus_env(self, key: str | None = None, secret: str | None = None) -> dict:
        """Environment for `nimbus` client subcommands: credentials in AWS_ACCESS_KEY_ID/…, and no
        AWS_SHARED_CREDENTIALS_FILE (nimbus lets an explicitly named credentials file win)."""
        env = self.cli_env(key, secret)
        env.pop("AWS_SHARED_CREDENTIALS_FILE", None)
        env.pop("AWS_CONFIG_FILE", None)
        return env

    def nimbus(self, *args: str, timeout: float = 120, check: bool = True, cwd: Path | None = None):
        """Run a `nimbus` client subcommand (deploy, invoke, ls, logs) against this server."""
        cmd = [str(nimbus_bin()), *args, "--endpoint-url", self.url]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.nimbus_env(), timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=cwd or self.workdir)
        if check and proc.returncode != 0:
            raise AssertionError(f"nimbus {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"stderr:\n{proc.stderr}\nstdout:\n{proc.stdout}")
        return proc


def namespace_server(server_factory, **kw) -> NimbusServer:
    """A server on the namespace sandbox tier (`--sandbox auto`), or a visible skip with the reason the
    server gave when this machine cannot create namespaces (not root, no namespaces, no mounts)."""
    args = tuple(kw.pop("extra_args", ())) + ("--sandbox", "auto")
    return require_namespace(server_factory(extra_args=args, **kw))


def require_namespace(srv: NimbusServer) -> NimbusServer:
    """`srv` if it runs the namespace tier; otherwise it is stopped and the test skips, visibly, with the
    reason the server logged for falling back."""
    if srv.sandbox != "namespace":
        reason = next((line for line in srv.log_text().splitlines() if "namespace sandbox" in line), srv.log_tail(5))
        srv.teardown()
        pytest.skip(f"the namespace sandbox tier is unavailable on this machine: {reason.strip()}")
    return srv


# --------------------------------------------------------------------------------------------------------
# Zips and the test functions
# --------------------------------------------------------------------------------------------------------

FIXED_DATE = (2024, 1, 1, 0, 0, 0)


def make_zip(files: dict[str, bytes | str], modes: dict[str, int] | None = None,
             symlinks: dict[str, str] | None = None, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of {name: content}; `modes` sets Unix permissions (default 0644, 0755 for `bootstrap`),
    `symlinks` adds {name: target} symbolic-link entries. Deterministic bytes for the same input."""
    modes = modes or {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 3  # Unix: external_attr carries the mode
            default = 0o755 if name.rsplit("/", 1)[-1] == "bootstrap" else 0o644
            info.external_attr = (stat.S_IFREG | modes.get(name, default)) << 16
            info.compress_type = compression
            zf.writestr(info, content.encode() if isinstance(content, str) else content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def code_sha256(zip_bytes: bytes) -> str:
    """CodeSha256 as Lambda reports it: base64 of the SHA-256 digest of the zip."""
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def read_function_source(*parts: str) -> str:
    return (FUNCTIONS.joinpath(*parts)).read_text()


def python_zip(extra: dict[str, bytes | str] | None = None) -> bytes:
    """tests/functions/python/probe.py (+ extra files): handler `probe.handler`."""
    files = {"probe.py": read_function_source("python", "probe.py")}
    files.update(extra or {})
    return make_zip(files)


def node_zip(extra: dict[str, bytes | str] | None = None) -> bytes:
    """tests/functions/node/probe.js: handlers `probe.handler` (async) and `probe.callbackHandler`."""
    files = {"probe.js": read_function_source("node", "probe.js")}
    files.update(extra or {})
    return make_zip(files)


def shell_zip() -> bytes:
    """tests/functions/shell/bootstrap: a provided.* function in sh + curl."""
    return make_zip({"bootstrap": read_function_source("shell", "bootstrap")})


def _distribution_files(dist_name: str) -> dict[str, bytes]:
    from importlib import metadata

    dist = metadata.distribution(dist_name)
    out = {}
    for rel in dist.files or []:
        rel_s = str(rel)
        if "__pycache__" in rel_s or rel_s.startswith("..") or rel_s.endswith(".pyc"):
            continue
        path = Path(dist.locate_file(rel))
        if path.is_file():
            out[rel_s] = path.read_bytes()
    return out


def awslambdaric_zip() -> bytes:
    """app.py + awslambdaric and its dependencies from this venv, with a bootstrap that runs
    `python -m awslambdaric app.handler` — the way one ships awslambdaric in a provided.al2023 zip."""
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    base_python = os.path.realpath(base_python)
    bootstrap = read_function_source("awslambdaric", "bootstrap").replace("@PYTHON@", base_python)
    files: dict[str, bytes | str] = {"bootstrap": bootstrap, "app.py": read_function_source("awslambdaric", "app.py")}
    from importlib import metadata

    todo = ["awslambdaric"]
    seen = set()
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        files.update(_distribution_files(name))
        for req in metadata.distribution(name).requires or []:
            if "extra ==" in req:
                continue
            dep = re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]
            if dep:
                todo.append(dep)
    modes = {n: 0o755 for n in files if n.endswith(".so")}
    return make_zip(files, modes)


def rust_echo_zip() -> bytes:
    """The lambda_runtime-based tests/functions/rust_echo binary as `bootstrap` (built by scripts/test)."""
    path = Path(os.environ.get("NIMBUS_RUST_ECHO_BOOTSTRAP")
                or REPO / "target" / "functions" / "release" / "bootstrap")
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: build it with `CARGO_TARGET_DIR=target/functions cargo build --release "
            "--manifest-path tests/functions/rust_echo/Cargo.toml` (scripts/test does)", pytrace=False)
    return make_zip({"bootstrap": path.read_bytes()})


def create_function(client, name: str, zip_bytes: bytes, runtime: str = "python3.12",
                    handler: str = "probe.handler", wait: bool = True, role: str = ROLE, **kw) -> dict:
    """CreateFunction, then wait (function_active_v2) until it can be invoked; returns the create response."""
    cfg = client.create_function(FunctionName=name, Runtime=runtime, Role=role, Handler=handler,
                                 Code={"ZipFile": zip_bytes}, **kw)
    if wait:
        client.get_waiter("function_active_v2").wait(FunctionName=name,
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return cfg


def wait_updated(client, name: str) -> None:
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


# --------------------------------------------------------------------------------------------------------
# Invoking and reading logs
# --------------------------------------------------------------------------------------------------------


@dataclass
class Invocation:
    status: int
    raw: bytes
    function_error: str | None
    log_result: str | None
    executed_version: str | None
    request_id: str
    headers: dict = field(default_factory=dict)

    @property
    def payload(self):
        return json.loads(self.raw) if self.raw else None


def invoke(client, name: str, event=None, raw: bytes | None = None, server: NimbusServer | None = None,
           **kw) -> Invocation:
    """Invoke and collect everything the response says. With `server` (process tier), a pid the function
    reports (probe functions do) is remembered so the server's teardown can check that the process is gone."""
    payload = raw if raw is not None else json.dumps(event if event is not None else {}).encode()
    resp = client.invoke(FunctionName=name, Payload=payload, **kw)
    body = resp["Payload"].read() if "Payload" in resp else b""
    log = resp.get("LogResult")
    inv = Invocation(
        status=resp["StatusCode"],
        raw=body,
        function_error=resp.get("FunctionError"),
        log_result=base64.b64decode(log).decode(errors="replace") if log else None,
        executed_version=resp.get("ExecutedVersion"),
        request_id=resp["ResponseMetadata"]["RequestId"],
        headers=resp["ResponseMetadata"]["HTTPHeaders"],
    )
    # Only the process tier's pids are host pids; in the namespace tier a function sees its own pid
    # namespace, and its processes are checked as the server's descendants instead.
    if server is not None and server.sandbox != "namespace" and inv.status == 200 and not inv.function_error:
        try:
            data = inv.payload
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("pid"), int):
            server.watch_pid(data["pid"], data.get("pid_start"))
    return inv


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def http_status(exc: ClientError) -> int:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"]


REPORT_RE = re.compile(
    r"REPORT RequestId: (?P<id>[0-9a-fA-F-]+)\tDuration: (?P<duration>\d+\.\d{2}) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\t"
    r"Max Memory Used: (?P<max_used>\d+) MB(?:\tInit Duration: (?P<init>\d+\.\d{2}) ms)?")


def report_lines(text: str) -> list[re.Match]:
    return [m for m in REPORT_RE.finditer(text)]


def filter_log_messages(logs_client, name: str, **kw) -> list[dict]:
    """Every event of /aws/lambda/NAME (follows nextToken)."""
    events = []
    token = None
    while True:
        args = {"logGroupName": f"/aws/lambda/{name}", **kw}
        if token:
            args["nextToken"] = token
        resp = logs_client.filter_log_events(**args)
        events.extend(resp.get("events", []))
        token = resp.get("nextToken")
        if not token or not resp.get("events"):
            return events


def wait_for_logs(logs_client, name: str, needles: list[str], timeout: float = 30) -> list[dict]:
    """Poll FilterLogEvents until every needle appears in some message; returns the events."""
    deadline = time.monotonic() + timeout
    events: list[dict] = []
    while time.monotonic() < deadline:
        try:
            events = filter_log_messages(logs_client, name)
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
            events = []
        text = "\n".join(e["message"] for e in events)
        if all(n in text for n in needles):
            return events
        time.sleep(0.25)
    text = "\n".join(e["message"] for e in events)
    missing = [n for n in needles if n not in text]
    raise AssertionError(f"log group /aws/lambda/{name} never showed {missing}; it has:\n{text[-3000:]}")
