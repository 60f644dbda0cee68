"""A rootless Nimbus for the end-to-end suite: `nimbus serve` run as an unprivileged user, as a service
manager would start it with `User=` and `Delegate=yes`.

The test process is root (CI is) and does what the service manager would: it makes a cgroup in each
hierarchy the namespace tier uses and hands it to the user (chown, which is what delegation amounts to), and
puts the server's process into it before it drops to the user with setpriv. The server then enters a user
namespace of its own (see crates/sandbox/src/namespace/user.rs).

The user has no passwd entry and no groups (a bare uid, like a DynamicUser= service). The test venv's
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
import uuid
from pathlib import Path

import pytest

UID = 4242
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


class Rootless:
    """Everything a rootless server needs that only root can give it; undone by `cleanup`."""

    def __init__(self, delegate: bool = True) -> None:
        if os.geteuid() != 0:
            pytest.skip("the rootless tests need root to delegate cgroups to the unprivileged user (CI is root)")
        if not HOST_PYTHON.exists() or shutil.which("setpriv") is None:
            pytest.skip(f"the rootless tests need {HOST_PYTHON} and setpriv (util-linux)")
        self.uid = UID
        self.workdir = Path(tempfile.mkdtemp(prefix="nimbus-rootless-", dir="/tmp"))
        os.chmod(self.workdir, 0o755)
        os.chown(self.workdir, UID, UID)
        self.cgroups: list[Path] = []
        name = f"nimbus-rootless-{uuid.uuid4().hex[:8]}"
        for version, mount in cgroup_mounts() if delegate else []:
            d = mount / name
            d.mkdir()
            self.cgroups.append(d)
            delegated = [d] + [d / f for f in ("cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads")]
            for p in delegated:
                if p.exists():
                    os.chown(p, UID, UID)
        self.bin_dir = self._python()

    def _python(self) -> Path:
        venv = self.workdir / "python"
        subprocess.run([str(HOST_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
        lib = next((venv / "lib").glob("python3*")) / "site-packages"
        (lib / "test-venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        return venv / "bin"

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
        os.chown(workdir, UID, UID)
        return workdir

    def prepare(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chown(data_dir, UID, UID)

    def cleanup(self) -> None:
        """After the server stopped: its cgroups (deepest first; it removes its own unless it crashed) and
        the workdir."""
        for root in self.cgroups:
            for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        shutil.rmtree(self.workdir, ignore_errors=True)
