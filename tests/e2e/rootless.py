"""A rootless Nimbus for the end-to-end suite: `nimbus serve` run as an unprivileged user, as a service
manager would start it with `User=` and `Delegate=yes`.

The test process is root (CI is) and does what the service manager would: it makes a cgroup in each
hierarchy the namespace tier uses and hands it to the user (chown, which is what delegation amounts to), and
puts the server's process into it before it drops to the user with setpriv. The server then enters a user
namespace of its own (see crates/sandbox/src/namespace/user.rs).

Two kinds of user: one with subordinate ids (functions get a host user of their own) and a bare uid with
no passwd entry and no groups (like a DynamicUser= service; functions share its uid). The test venv's
interpreter lives under /root, which it may not read, so python3.x functions run on the host's
/usr/bin/python3 through a venv without pip whose .pth adds the test venv's site-packages (boto3 and
botocore are pure Python, so the host's 3.11 loads them).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

# With subordinate ids (a user in /etc/passwd with ranges in /etc/subuid and /etc/subgid, as useradd makes
# them, and newuidmap from the uidmap package): functions run as a host user of their own.
SUBIDS_USER, SUBIDS_UID = "nimbus-e2e", 4242
# Without: a bare uid (no passwd entry, like a DynamicUser= service); functions run as this uid too.
BARE_UID = 4243
CONTROLLERS = ("memory", "pids", "freezer", "cpu")
HOST_PYTHON = Path("/usr/bin/python3")


def cgroup_mounts() -> list[tuple[str, Path]]:
    """(version, mount point) of each v1 hierarchy carrying one of the tier's controllers, and of the v2 tree
    when no v1 hierarchy carries them (a pure v2 machine)."""
    v1, v2 = [], []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup" and any(c in options for c in CONTROLLERS):
                v1.append(("v1", Path(fields[4])))
            elif fstype == "cgroup2":
                v2.append(("v2", Path(fields[4])))
    return v1 or v2


def ensure_subids_user() -> int:
    """The user with subordinate ids, made once on this machine (CI's is fresh)."""
    if shutil.which("newuidmap") is None or shutil.which("newgidmap") is None:
        pytest.skip("the rootless tests with subordinate ids need newuidmap and newgidmap (package uidmap)")
    if subprocess.run(["getent", "passwd", SUBIDS_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--uid", str(SUBIDS_UID), "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", SUBIDS_USER], check=True)
    if subuid_start(SUBIDS_USER) is None:
        subprocess.run(["usermod", "--add-subuids", "300000-365535", "--add-subgids", "300000-365535",
                        SUBIDS_USER], check=True)
    return SUBIDS_UID


def subuid_start(user: str) -> int | None:
    try:
        with open("/etc/subuid") as f:
            for line in f:
                owner, start, _count = line.strip().split(":")
                if owner == user:
                    return int(start)
    except (OSError, ValueError):
        pass
    return None


class Rootless:
    """Everything a rootless server needs that only root can give it; undone by `cleanup`."""

    def __init__(self, delegate: bool = True, subids: bool = True) -> None:
        if os.geteuid() != 0:
            pytest.skip("the rootless tests need root to delegate cgroups to the unprivileged user (CI is root)")
        if not HOST_PYTHON.exists() or shutil.which("setpriv") is None:
            pytest.skip(f"the rootless tests need {HOST_PYTHON} and setpriv (util-linux)")
        self.uid = ensure_subids_user() if subids else BARE_UID
        self.subuid_start = subuid_start(SUBIDS_USER) if subids else None
        # Not under /tmp: the server's python lives here, and a read-only path under the host's /tmp would
        # show inside every environment's /tmp.
        self.workdir = Path(tempfile.mkdtemp(prefix="nimbus-rootless-", dir="/var/tmp"))
        os.chmod(self.workdir, 0o755)
        os.chown(self.workdir, self.uid, self.uid)
        self.cgroups: list[Path] = []
        name = f"nimbus-rootless-{uuid.uuid4().hex[:8]}"
        for version, mount in cgroup_mounts() if delegate else []:
            d = mount / name
            d.mkdir()
            self.cgroups.append(d)
            delegated = [d] + [d / f for f in ("cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads")]
            for p in delegated:
                if p.exists():
                    os.chown(p, self.uid, self.uid)
        self.bin_dir = self._python()

    def _python(self) -> Path:
        venv = self.workdir / "python"
        subprocess.run([str(HOST_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
        lib = next((venv / "lib").glob("python3*")) / "site-packages"
        (lib / "test-venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        return venv / "bin"

    def function_host_uid(self) -> int:
        """The host uid a function's uid 993 is: 992 into the subordinate range, or the server's own."""
        return self.subuid_start + 992 if self.subuid_start is not None else self.uid

    def join_cgroups(self) -> None:
        """preexec_fn of the server's Popen: the child moves itself into the delegated cgroups, as root."""
        for d in self.cgroups:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def command(self, cmd: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--", *cmd]

    def env(self, env: dict) -> dict:
        # The server's python3 is the host's (through the venv above), not the test venv's under /root.
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if not p.startswith(sys.prefix)]
        return {**env, "PATH": os.pathsep.join([str(self.bin_dir), *path]), "HOME": str(self.workdir)}

    def new_workdir(self) -> Path:
        workdir = Path(tempfile.mkdtemp(prefix="server-", dir=self.workdir))
        os.chmod(workdir, 0o755)
        os.chown(workdir, self.uid, self.uid)
        return workdir

    def prepare(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chown(data_dir, self.uid, self.uid)

    def cleanup(self) -> None:
        """After the server stopped: its cgroups (deepest first; it removes its own unless it crashed, and a
        crashed one's frozen environments are thawed and killed here, as the next server would) and the
        workdir."""
        for root in self.cgroups:
            dirs = sorted((d for d, _, _ in os.walk(root)), key=lambda d: -d.count("/"))
            for d in dirs:
                for file, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):  # v1, v2
                    try:
                        Path(d, file).write_text(thawed)
                    except OSError:
                        pass
                try:
                    pids = Path(d, "cgroup.procs").read_text().split()
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(int(pid), 9)
                    except (OSError, ValueError):
                        pass
        for root in self.cgroups:
            for d in sorted((d for d, _, _ in os.walk(root)), key=lambda d: -d.count("/")):
                for _ in range(50):  # killed tasks leave their cgroup a moment later
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.02)
        shutil.rmtree(self.workdir, ignore_errors=True)
