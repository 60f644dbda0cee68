"""Containment on the namespace sandbox tier: functions that try to get out, run for real.

Each test deploys tests/functions/python/containment.py (or the probe) and has it try one thing: read the
data dir, another function's code or host files; write outside /tmp; fill /tmp; allocate past its memory;
fork-bomb; signal or trace processes outside; reach another environment's Runtime API or the host's
network; keep running after it returned. Each is refused or contained, and the server keeps serving.

The outside network (pasta, from the passt package): a function reaches a server on the machine's own
non-loopback address (the stand-in for "outside"), but not the host's loopback; tagged
`nimbus:network=none` it reaches loopback only; and each environment's pasta ends with it.

The whole module skips, visibly, where the machine cannot create namespaces (see helpers.require_namespace).
"""

import os
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from helpers import (NimbusServer, create_function, invoke, loop_devices_into, make_zip, python_zip,
                     read_function_source, report_lines, require_namespace, shell_zip, unique_name, wait_updated)

pytestmark = pytest.mark.timeout(300)


# How the server runs: as root; rootless with subordinate ids; rootless without (see rootless.py).
MODES = {"root": False, "rootless": True, "rootless-no-subids": "no-subids"}


@pytest.fixture(scope="module", params=list(MODES))
def srv(request, tmp_path_factory):
    """The server every test tries to get out of, in each mode (rootless: an unprivileged user with
    delegated cgroups, see rootless.py): the same containment every way."""
    rootless = MODES[request.param]
    s = NimbusServer(tmp_path_factory.mktemp("nimbus-ns"), extra_args=("--sandbox", "auto"), rootless=rootless)
    s = require_namespace(s.start())
    yield s
    s.teardown()


@pytest.fixture(scope="module")
def lam(srv):
    return srv.lambda_client()


def containment_zip() -> bytes:
    return make_zip({"containment.py": read_function_source("python", "containment.py")})


def deploy(lam, prefix: str, **kw) -> str:
    name = unique_name(prefix)
    create_function(lam, name, containment_zip(), handler="containment.handler", Timeout=kw.pop("Timeout", 60), **kw)
    return name


def attempt(lam, name: str, event: dict, srv=None, **kw) -> dict:
    inv = invoke(lam, name, event, server=srv, **kw)
    assert inv.status == 200 and inv.function_error is None, inv.raw
    return inv.payload


def refused(result: dict) -> bool:
    return "error" in result and not result.get("ok")


def test_function_runs_unprivileged_and_confined(lam, srv):
    name = deploy(lam, "cont-id")
    ident = attempt(lam, name, {"identity": True})["results"]["identity"]
    assert (ident["uid"], ident["gid"], ident["groups"]) == (993, 990, [])
    assert int(ident["cap_eff"], 16) == 0 and int(ident["cap_prm"], 16) == 0 and int(ident["cap_bnd"], 16) == 0
    assert ident["no_new_privs"] == "1"
    assert ident["seccomp"] == "2", "a seccomp filter is installed"
    assert ident["nofile"] == [1024, 1024]
    assert ident["cwd"] == "/var/task"
    # Its own pid namespace: init and the runtime, nothing of the host (the server's pid is not there).
    assert len(ident["pids"]) <= 3 and 1 in ident["pids"], ident["pids"]
    # Its own network namespace: the only listeners are its Runtime API and the API, both its own.
    assert ident["listening"] == [9000, 9001]
    mounts = {line.split()[1]: line.split()[3].split(",") for line in ident["mounts"]}
    assert "ro" in mounts["/"] and "ro" in mounts["/var/task"] and "ro" in mounts["/usr"]
    assert "rw" in mounts["/tmp"]


def test_the_function_runs_as_a_host_user_of_its_own(lam, srv):
    """Its uid 993 is the host's 993 as root, a subordinate id rootless; only rootless without subordinate
    ids is it the server's own uid (which the server warns about at start)."""
    attempt(lam, deploy(lam, "cont-hostuid"), {"identity": True})
    from helpers import descendants
    uids = set()
    for pid in descendants(srv.proc.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"bootstrap.py" in cmdline:
            uids.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
    expected = srv.rootless.function_host_uid() if srv.rootless else 993
    assert uids == {expected}, (uids, expected)
    if srv.rootless and expected == srv.rootless.uid:
        assert "functions run as Nimbus's own user on the host" in srv.log_text()
    else:
        assert "functions run as Nimbus's own user on the host" not in srv.log_text()


def test_data_dir_other_functions_and_host_files_are_invisible(lam, srv):
    other = deploy(lam, "cont-other")
    attempt(lam, other, {})
    name = deploy(lam, "cont-read")
    unpacked = sorted((srv.data_dir / "code" / "unpacked").iterdir())
    assert len(unpacked) >= 1
    secrets = [
        str(srv.data_dir),
        str(srv.data_dir / "credentials"),
        str(srv.data_dir / "nimbus.db"),
        *[str(p) for p in unpacked],
        "/etc/shadow",
        "/root/.bash_history",
        "/root/.cargo",
        str(Path(__file__).resolve()),
        "/proc/1/environ",
        "/proc/1/root/",
        "/sys/fs/cgroup",
    ]
    results = attempt(lam, name, {"read": secrets + ["/var/task", "/etc", "/"]})["results"]
    for path in secrets:
        assert refused(results[f"read {path}"]), (path, results[f"read {path}"])
    assert results["read /var/task"]["listing"] == ["containment.py"], "only its own code"
    assert "shadow" not in results["read /etc"]["listing"]
    # The root holds the system directories plus the top of each directory the host's interpreters live in
    # (the server runs python3.x functions on this test venv's interpreter, wherever the checkout is).
    interpreter_tops = {Path(d).parts[1] for d in interpreter_dirs() if len(Path(d).parts) > 1}
    system = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "root", "sbin", "tmp", "usr",
              "var"}
    listing = set(results["read /"]["listing"])
    assert listing <= system | interpreter_tops, (sorted(listing), sorted(interpreter_tops))
    # Where an interpreter lives under a directory of its own (a checkout's .venv), only that path shows.
    for top in sorted(listing - system):
        inside = {Path(d).parts[2] for d in interpreter_dirs() if len(Path(d).parts) > 2 and Path(d).parts[1] == top}
        results = attempt(lam, name, {"read": [f"/{top}"]})["results"]
        assert set(results[f"read /{top}"]["listing"]) <= inside, (top, results[f"read /{top}"], inside)


HOST_VIEW = """
import os
def handler(event, context):
    out = {}
    for path in ["/proc/cmdline", "/proc/meminfo", "/proc/self/mountinfo", "/proc/1/cmdline", "/proc/self/cgroup"]:
        try:
            out[path] = open(path, "rb").read().decode(errors="replace")
        except OSError as e:
            out[path] = f"error {e.errno}"
    for path in ["/proc/1/exe", "/proc/1/environ"]:
        try:
            out[path] = os.readlink(path) if path.endswith("exe") else open(path, "rb").read().decode(errors="replace")
        except OSError as e:
            out[path] = f"error {e.errno}"
    return out
"""


def test_the_host_is_not_what_a_function_sees(lam, srv):
    """Lambda shows a function a machine of its own size: not the host's kernel command line or memory,
    no host path in its mounts, nothing naming the Nimbus binary."""
    name = unique_name("cont-hostview")
    create_function(lam, name, make_zip({"view.py": HOST_VIEW}), handler="view.handler", Timeout=30, MemorySize=256)
    seen = attempt(lam, name, {})
    host_cmdline = Path("/proc/cmdline").read_text()
    assert seen["/proc/cmdline"].strip() and seen["/proc/cmdline"] != host_cmdline, seen["/proc/cmdline"]
    mem = dict(re.findall(r"^(\w+):\s+(\d+) kB", seen["/proc/meminfo"], re.M))
    assert int(mem["MemTotal"]) == 256 * 1024, seen["/proc/meminfo"]
    assert int(mem["MemAvailable"]) <= int(mem["MemTotal"])
    host_total = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1)
    assert host_total not in seen["/proc/meminfo"]
    # No host path of Nimbus's in the mounts: the data dir (code, runtime files), the server's workdir,
    # the binary; the interpreters' directories are where they are, as the host's runtime image.
    from helpers import nimbus_bin
    secrets = [str(srv.data_dir), str(srv.workdir), str(srv.data_dir.resolve()), str(nimbus_bin().parent)]
    for path in ["/proc/self/mountinfo", "/proc/1/cmdline", "/proc/self/cgroup"]:
        for secret in secrets:
            assert secret not in seen[path], (path, secret, seen[path])
    for line in seen["/proc/self/mountinfo"].splitlines():
        fields = line.split()
        if fields[4] in ("/var/task", "/var/runtime"):
            assert fields[3] == "/", f"{fields[4]} is mounted from a path of the host: {line}"
    assert "nimbus" not in seen["/proc/1/cmdline"].split("\0")[0].split("/")[:-1]
    assert seen["/proc/1/exe"].startswith("error") and seen["/proc/1/environ"].startswith("error"), seen


def interpreter_dirs() -> list[str]:
    """The directories the server's `python3` (this venv's, see helpers.NimbusServer) and `node` read."""
    dirs = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, str(Path(sys.executable).parent)]
    dirs += [p for p in sys.path if p.startswith("/")]
    node = shutil.which("node")
    if node:
        real = Path(node).resolve()
        dirs += [str(real.parent), str(real.parent.parent), str(Path(node).parent)]
    return dirs


def test_writes_outside_tmp_are_refused(lam, srv):
    name = deploy(lam, "cont-write")
    targets = ["/var/task/evil", "/evil", "/etc/evil", "/opt/evil", "/var/runtime/evil", "/usr/evil", "/dev/evil"]
    results = attempt(lam, name, {"write": targets + ["/tmp/fine"]})["results"]
    for path in targets:
        assert results[f"write {path}"].get("errno") in ("EROFS", "EACCES", "EPERM"), (path, results[f"write {path}"])
    assert results["write /tmp/fine"] == {"ok": True}


def tmp_mount(lam, name: str) -> tuple[str, str]:
    """(source, filesystem type) of the function's /tmp: an ext4 on /dev/loopN (a disk-backed /tmp) or a tmpfs
    (where the server has no disks: not root, no loop devices or mkfs.ext4)."""
    mounts = attempt(lam, name, {"identity": True})["results"]["identity"]["mounts"]
    source, _, fstype = [line.split()[:3] for line in mounts if line.split()[1] == "/tmp"][-1]
    return source, fstype


def require_disk_tmp(lam, srv, name: str) -> str:
    """The loop device of the function's disk-backed /tmp, or a visible skip with the server's reason."""
    source, fstype = tmp_mount(lam, name)
    if fstype != "ext4":
        reason = next((line for line in srv.log_text().splitlines() if "/tmp is a tmpfs" in line), "")
        pytest.skip(f"/tmp is a {fstype} here, not a disk: {reason.strip()}")
    assert source.startswith("/dev/loop"), source
    return source


def test_tmp_is_limited_to_ephemeral_storage(lam, srv):
    # The memory size is the larger, so that the limit hit is /tmp's wherever /tmp is a tmpfs (its pages count
    # toward memory there).
    name = deploy(lam, "cont-fill", MemorySize=1024, EphemeralStorage={"Size": 512})
    first = attempt(lam, name, {"fill_tmp": True})
    fill = first["results"]["fill_tmp"]
    assert fill.get("errno") == "ENOSPC", fill
    # A disk /tmp is exactly the size; its ext4's inode tables and bitmaps take ~4% of it (a tmpfs has none).
    assert 480 <= fill["written_mb"] <= 512, fill
    # The environment and the platform keep serving.
    again = attempt(lam, name, {"write": ["/tmp/after"]})
    assert again["env_id"] == first["env_id"] and again["results"]["write /tmp/after"] == {"ok": True}
    other = invoke(lam, deploy(lam, "cont-fill-other"), {})
    assert other.function_error is None


def test_a_non_default_ephemeral_storage_is_the_environments_tmp_size(lam, srv):
    # Slots are made ahead with a /tmp of the default 512 MB; this environment's is made at launch.
    name = deploy(lam, "cont-fill-1g", MemorySize=1536, EphemeralStorage={"Size": 1024})
    fill = attempt(lam, name, {"fill_tmp": True})["results"]["fill_tmp"]
    assert fill.get("errno") == "ENOSPC", fill
    assert 900 <= fill["written_mb"] <= 1024, fill  # a disk's ext4 takes ~4%; a tmpfs (rootless) none
    # The next environment of that size gets the spare disk made after this launch: fresh and as large.
    lam.update_function_configuration(FunctionName=name, Description="the next environment")
    wait_updated(lam, name)
    second = attempt(lam, name, {"read": ["/tmp"], "fill_tmp": True})
    assert second["results"]["read /tmp"]["listing"] == [], "a new environment's /tmp is empty"
    assert second["results"]["fill_tmp"].get("errno") == "ENOSPC", second
    assert 900 <= second["results"]["fill_tmp"]["written_mb"] <= 1024, second
    # The same on a plain slot (a custom runtime; the shell bootstrap keeps its headers in /tmp).
    shell = unique_name("cont-shell-1g")
    create_function(lam, shell, shell_zip(), runtime="provided.al2023", handler="unused", MemorySize=128,
                    EphemeralStorage={"Size": 2048})
    inv = invoke(lam, shell, {"x": 1})
    assert inv.status == 200 and inv.function_error is None and inv.payload["echo"] == {"x": 1}, inv.raw


def test_tmp_does_not_count_toward_memory(lam, srv):
    # As on Lambda, a small function may keep more in /tmp than its memory: a disk's page cache is written
    # back and reclaimed under the memory limit instead of killing the function.
    name = deploy(lam, "cont-tmp-mem", MemorySize=128)
    require_disk_tmp(lam, srv, name)
    env_id = None
    for fsync in (False, True):
        inv = invoke(lam, name, {"tmp_write_mb": 300, "fsync": fsync}, LogType="Tail")
        assert inv.status == 200 and inv.function_error is None, (fsync, inv.raw)
        body = inv.payload
        assert body["results"]["tmp_write"] == {"ok": True, "written_mb": 300, "verified_mb": 300}, (fsync, body)
        assert env_id in (None, body["env_id"]), "the environment was not killed in between"
        env_id = body["env_id"]
        # Max Memory Used is the cgroup's peak: /tmp's page cache counts while resident, but never past the limit.
        used = int(report_lines(inv.log_result)[-1]["max_used"])
        assert used <= 128, used


def test_tmp_persists_in_a_warm_environment_and_a_new_one_starts_empty(lam, srv):
    name = deploy(lam, "cont-tmp-keep")
    first = attempt(lam, name, {"write": ["/tmp/kept"], "read": ["/tmp"]})
    assert first["results"]["read /tmp"]["listing"] == [], "a new environment's /tmp is empty"
    again = attempt(lam, name, {"read": ["/tmp"]})
    assert again["env_id"] == first["env_id"] and again["results"]["read /tmp"]["listing"] == ["kept"], again
    lam.update_function_configuration(FunctionName=name, Description="a new environment")
    wait_updated(lam, name)
    fresh = attempt(lam, name, {"read": ["/tmp"]})
    assert fresh["env_id"] != first["env_id"] and fresh["results"]["read /tmp"]["listing"] == [], fresh


def test_a_retired_environments_tmp_disk_is_detached(lam, srv):
    name = deploy(lam, "cont-tmp-gone")
    device = require_disk_tmp(lam, srv, name)
    ours = loop_devices_into(srv.data_dir)
    assert device in ours and ours[device].endswith(" (deleted)"), ("the image is unlinked once attached", ours)
    assert list((srv.data_dir / "sandbox" / "tmp").iterdir()) == []
    backing = ours[device]
    lam.delete_function(FunctionName=name)
    # The device may be taken again by a new slot, for another image: what must go is this one.
    deadline = time.monotonic() + 10
    while loop_devices_into(srv.data_dir).get(device) == backing and time.monotonic() < deadline:
        time.sleep(0.1)
    assert loop_devices_into(srv.data_dir).get(device) != backing, f"{device} still holds {backing}"


def test_allocating_past_memory_size_is_out_of_memory(lam, srv):
    name = deploy(lam, "cont-oom", MemorySize=128)
    warm = attempt(lam, name, {})
    inv = invoke(lam, name, {"alloc_mb": 400}, LogType="Tail")
    assert inv.status == 200 and inv.function_error == "Unhandled", inv.raw
    body = inv.payload
    assert body["errorType"] == "Runtime.OutOfMemory", body
    assert re.fullmatch(r"RequestId: [0-9a-f-]+ Error: Runtime exited with error: signal: killed", body["errorMessage"])
    assert f"RequestId: {inv.request_id}" in body["errorMessage"]
    assert "Status: error\tError Type: Runtime.OutOfMemory" in inv.log_result, inv.log_result
    report = report_lines(inv.log_result)[0]
    assert 100 <= int(report["max_used"]) <= 128, inv.log_result
    # The next invocation gets a fresh environment.
    after = attempt(lam, name, {})
    assert after["env_id"] != warm["env_id"]


def test_max_memory_used_is_measured_by_the_cgroup(lam, srv):
    name = deploy(lam, "cont-mem", MemorySize=512)
    small = invoke(lam, name, {}, LogType="Tail")
    big = invoke(lam, name, {"alloc_mb": 200}, LogType="Tail")
    assert big.function_error is None, big.raw
    used_small = int(report_lines(small.log_result)[0]["max_used"])
    used_big = int(report_lines(big.log_result)[0]["max_used"])
    assert 5 <= used_small < 150, small.log_result
    assert 200 <= used_big <= 512, big.log_result


def test_fork_bomb_is_contained(lam, srv):
    name = deploy(lam, "cont-fork", MemorySize=2048)
    result = attempt(lam, name, {"fork_bomb": True})["results"]["fork_bomb"]
    assert result.get("errno") == "EAGAIN", result
    assert result["forked"] < 1024, result
    # The same environment and others keep working.
    assert attempt(lam, name, {"identity": True})["results"]["identity"]["uid"] == 993
    assert invoke(lam, deploy(lam, "cont-fork-other"), {}).function_error is None


def test_processes_outside_cannot_be_signalled_or_traced(lam, srv):
    name = deploy(lam, "cont-kill")
    server_pid = srv.proc.pid
    results = attempt(lam, name, {"kill": server_pid})["results"]["kill"]
    assert results["0"].get("errno") == "ESRCH" and results["9"].get("errno") == "ESRCH", results
    assert attempt(lam, name, {"ptrace": 1})["results"]["ptrace"] == {"error": "ptrace", "errno": "EPERM"}
    assert attempt(lam, name, {"ptrace": server_pid})["results"]["ptrace"]["errno"] in ("EPERM", "ESRCH")
    assert srv.proc.poll() is None, "the server is still running"


def test_signalling_its_process_group_reaches_only_its_own_environment(lam, srv):
    # Rootless, the function has the server's uid: were it in the server's process group, kill(0, SIGKILL)
    # would end the server; as root it would still end every other environment.
    victim = deploy(lam, "cont-victim")
    warm = attempt(lam, victim, {})["env_id"]
    inv = invoke(lam, deploy(lam, "cont-killpg"), {"kill_group": True}, server=srv)
    assert inv.function_error is not None, "the function killed itself"
    assert srv.proc.poll() is None, "the server is still running"
    assert attempt(lam, victim, {})["env_id"] == warm, "the other environment is still warm"


def test_no_leases_on_shared_files(lam, srv):
    # A lease on the code or the bootstraps (files every environment opens, owned by the server's uid when
    # rootless) would stall their next cold starts for 45 s.
    name = deploy(lam, "cont-lease")
    for path in ("/var/task/containment.py", "/var/runtime/python/bootstrap.py"):
        lease = attempt(lam, name, {"lease": path})["results"]["lease"]
        assert lease.get("errno") == "EPERM", (path, lease)


@pytest.mark.parametrize("rootless", list(MODES.values()), ids=list(MODES))
def test_the_servers_terminal_is_not_the_functions(server_factory, rootless):
    # Run by hand, the server has a controlling terminal; a function that could open it could read the
    # keys typed there, write to it, or inject a Ctrl-C into it (TIOCSTI).
    s = require_namespace(server_factory(extra_args=("--sandbox", "auto"), rootless=rootless, tty=True))
    lam = s.lambda_client()
    results = attempt(lam, deploy(lam, "cont-tty"), {"tty": True})["results"]
    assert results["tty"].get("errno") == "ENXIO", results["tty"]


def test_other_environments_and_the_host_network_are_unreachable(lam, srv):
    a, b = deploy(lam, "cont-net-a"), deploy(lam, "cont-net-b")
    ident_a = attempt(lam, a, {"identity": True})["results"]["identity"]
    ident_b = attempt(lam, b, {"identity": True})["results"]["identity"]
    # Both see 127.0.0.1:9001 and :9000, each its own (separate network namespaces, separate pids).
    assert ident_a["listening"] == ident_b["listening"] == [9000, 9001]
    port = int(srv.url.rsplit(":", 1)[1])
    reach = attempt(lam, b, {"connect": ["127.0.0.1", port]})["results"]["connect"]
    assert reach.get("errno") == "ECONNREFUSED", "the host's loopback is not the environment's"
    # A response posted to its own Runtime API for a request it does not have is refused there.
    code = """
import json, urllib.request, urllib.error, os
def handler(event, context):
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    req = urllib.request.Request(f"http://{api}/2018-06-01/runtime/invocation/{event['id']}/response",
                                 data=b'"hijacked"', method="POST")
    try:
        return {"status": urllib.request.urlopen(req, timeout=5).status, "api": api}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "api": api}
"""
    hijacker = unique_name("cont-hijack")
    create_function(lam, hijacker, make_zip({"h.py": code}), handler="h.handler", Timeout=30)
    got = attempt(lam, hijacker, {"id": "00000000-0000-0000-0000-000000000000"})
    assert got["api"] == "127.0.0.1:9001" and got["status"] == 400, got


def test_idle_environment_is_frozen(lam, srv):
    import time

    name = deploy(lam, "cont-freeze")
    first = attempt(lam, name, {"ticker": True})
    time.sleep(1.5)
    second = attempt(lam, name, {"ticks_since_return": True})
    assert second["env_id"] == first["env_id"]
    ticks = second["results"]["ticks_since_return"]
    assert ticks["idle_seconds"] > 1.0
    # A running ticker would have ticked ~100 times in that second; a frozen one did not tick at all.
    assert ticks["ticks"] <= 2, ticks


def test_cpu_is_shared_in_proportion_to_memory(lam, srv):
    # Lambda gives 1769 MB one vCPU; 128 MB gets 128/1769 of one (about 7 %) once init is done.
    small = deploy(lam, "cont-cpu-small", MemorySize=128)
    attempt(lam, small, {})
    spun = attempt(lam, small, {"spin": 1.0})["results"]["spin"]
    assert spun["cpu"] / spun["wall"] < 0.2, spun
    big = deploy(lam, "cont-cpu-big", MemorySize=1769)
    attempt(lam, big, {})
    spun = attempt(lam, big, {"spin": 1.0})["results"]["spin"]
    assert spun["cpu"] / spun["wall"] > 0.3, spun


def test_sdk_calls_from_inside_reach_the_api(lam, srv):
    name = unique_name("cont-sdk")
    create_function(lam, name, python_zip(), Timeout=60)
    inv = invoke(lam, name, {"call_lambda": True})
    assert inv.function_error is None, inv.raw
    assert inv.payload["env"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert inv.payload["boto3"]["function_name"] == name


NETPROBE = """
import errno, os, socket
def handler(event, context):
    out = {"netns": os.stat("/proc/self/ns/net").st_ino}
    for key, (host, port) in event.get("get", {}).items():
        try:
            with socket.create_connection((host, port), timeout=3) as s:
                out[key] = {"banner": s.recv(128).decode(errors="replace")}
        except OSError as e:
            out[key] = {"errno": errno.errorcode.get(e.errno, "timeout") if e.errno else type(e).__name__}
    if event.get("sdk"):
        import boto3
        out["sdk"] = boto3.client("lambda").get_function(FunctionName=context.function_name)["Configuration"]["FunctionName"]
    return out
"""
# pasta's side of the link (--gateway); with --no-map-gw it is not the host.
PASTA_GATEWAY = "169.254.1.1"


def deploy_netprobe(lam, prefix: str, **kw) -> str:
    name = unique_name(prefix)
    create_function(lam, name, make_zip({"netprobe.py": NETPROBE}), handler="netprobe.handler", Timeout=30, **kw)
    return name


def require_pasta(srv) -> None:
    if shutil.which("pasta") is None:
        pytest.skip("pasta (the passt package) is not installed: functions reach loopback only")
    assert "reach the outside network through pasta" in srv.log_text(), srv.log_tail(20)


def outside_address() -> str:
    """The machine's own non-loopback IPv4 address (the source of its default route): the stand-in for an
    address outside every environment."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("198.51.100.1", 9))  # no packet is sent; this only picks a route
        addr = probe.getsockname()[0]
    except OSError:
        addr = "127.0.0.1"
    finally:
        probe.close()
    if addr.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to stand in for the outside network")
    return addr


class BannerServer:
    """Accepts connections on (addr, port 0) and sends each a token of its own, counting them."""

    def __init__(self, addr: str):
        self.token = f"banner-{uuid.uuid4().hex}"
        self.served = 0
        self.sock = socket.create_server((addr, 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.served += 1
            with conn:
                conn.sendall(self.token.encode())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=10)


def pasta_serving(netns_inode: int) -> int | None:
    """The pasta connecting the network namespace with this inode (it holds it as its fd 3)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if open(f"/proc/{entry}/comm").read().startswith("passt") and \
                    os.readlink(f"/proc/{entry}/fd/3") == f"net:[{netns_inode}]":
                return int(entry)
        except OSError:
            continue
    return None


def pastas(pids) -> list[int]:
    found = []
    for pid in pids:
        try:
            if open(f"/proc/{pid}/comm").read().startswith("passt"):
                found.append(pid)
        except OSError:
            pass
    return found


def test_the_outside_is_reached_unless_the_function_is_tagged_loopback_only(lam, srv):
    require_pasta(srv)
    addr = outside_address()
    with BannerServer(addr) as outside, BannerServer("127.0.0.1") as host_lo:
        # 169.254.169.254 is a cloud host's instance metadata service: a reject route refuses it at once
        # (without it pasta would connect to it from the host, and hand out the host's credentials).
        targets = {"outside": [addr, outside.port], "host_loopback": ["127.0.0.1", host_lo.port],
                   "gateway": [PASTA_GATEWAY, host_lo.port], "metadata": ["169.254.169.254", 80]}
        connected = deploy_netprobe(lam, "net-outside")
        got = attempt(lam, connected, {"get": targets, "sdk": True})
        assert got["outside"] == {"banner": outside.token}, got
        # 127.0.0.1 is the environment's own; the gateway is pasta, which forwards nothing to the host.
        assert got["host_loopback"] == {"errno": "ECONNREFUSED"}, got
        assert got["gateway"].get("banner") != host_lo.token, got
        assert got["metadata"] in ({"errno": "EHOSTUNREACH"}, {"errno": "ENETUNREACH"}), got
        assert got["sdk"] == connected, "SDK calls reach Nimbus's API at AWS_ENDPOINT_URL"

        closed = deploy_netprobe(lam, "net-none", Tags={"nimbus:network": "none"})
        got = attempt(lam, closed, {"get": targets, "sdk": True})
        assert got["outside"] == {"errno": "ENETUNREACH"}, got
        # Link-local addresses, pasta's gateway among them, meet the reject route once the link is gone.
        assert got["gateway"] in ({"errno": "EHOSTUNREACH"}, {"errno": "ENETUNREACH"}), got
        assert got["host_loopback"] == {"errno": "ECONNREFUSED"}, got
        assert got["sdk"] == closed, "SDK calls work with loopback only"
        assert pasta_serving(got["netns"]) is None, "a loopback-only environment has no pasta"
    assert outside.served == 1 and host_lo.served == 0


def test_the_network_tag_is_checked_and_a_change_applies_to_the_next_environment(lam, srv):
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="nimbus:network"):
        deploy_netprobe(lam, "net-bad", Tags={"nimbus:network": "off"})
    name = deploy_netprobe(lam, "net-switch")
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="nimbus:network"):
        lam.tag_resource(Resource=arn, Tags={"nimbus:network": "None"})
    require_pasta(srv)
    addr = outside_address()
    with BannerServer(addr) as outside:
        event = {"get": {"outside": [addr, outside.port]}}
        first = attempt(lam, name, event)
        assert first["outside"] == {"banner": outside.token}, first
        lam.tag_resource(Resource=arn, Tags={"nimbus:network": "none"})
        second = attempt(lam, name, event)
        assert second["netns"] != first["netns"], "the warm environment was retired"
        assert second["outside"] == {"errno": "ENETUNREACH"}, second
        lam.untag_resource(Resource=arn, TagKeys=["nimbus:network"])
        third = attempt(lam, name, event)
        assert third["netns"] != second["netns"]
        assert third["outside"] == {"banner": outside.token}, third


def test_an_environments_pasta_ends_with_it(lam, srv):
    require_pasta(srv)
    name = deploy_netprobe(lam, "net-reap")
    pid = pasta_serving(attempt(lam, name, {})["netns"])
    assert pid is not None, "the environment has a pasta of its own"
    assert pid in descendants_of(srv.proc.pid), "pasta is the server's child"
    lam.update_function_configuration(FunctionName=name, Description="retire the environment")
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}"), "the retired environment's pasta ended and was reaped"


def descendants_of(pid: int) -> dict[int, int]:
    from helpers import descendants

    return descendants(pid)


def _cgroup_dirs(server_pid: int) -> list[str]:
    found = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d.startswith(f"nimbus-{server_pid}"):
                found.append(os.path.join(root, d))
        if root.count("/") > 7:
            dirs[:] = []
    return found


@pytest.mark.parametrize("rootless", list(MODES.values()), ids=list(MODES))
def test_nothing_is_left_after_the_server_stops(server_factory, rootless):
    s = require_namespace(server_factory(extra_args=("--sandbox", "auto"), rootless=rootless))
    lam = s.lambda_client()
    name = deploy(lam, "cont-leak")
    attempt(lam, name, {"ticker": True})
    pid = s.proc.pid
    assert _cgroup_dirs(pid), "environments live in cgroups of the server's own"
    connected = pastas(descendants_of(pid))
    assert connected or shutil.which("pasta") is None, "environments and ready slots have their pastas"
    disks = loop_devices_into(s.data_dir)
    assert disks or tmp_mount(lam, name)[1] == "tmpfs", "environments and ready slots have their /tmp disks"
    s.stop_cleanly()  # which also checks that no loop device is backed by the data dir any more
    assert loop_devices_into(s.data_dir) == {}
    assert list((s.data_dir / "sandbox" / "tmp").glob("*")) == [], "no /tmp image is left"
    assert not [p for p in connected if os.path.exists(f"/proc/{p}")], "no pasta outlives the server"
    assert _cgroup_dirs(pid) == [], "the server removed its cgroups"
    with open("/proc/self/mountinfo") as f:
        assert str(s.data_dir) not in f.read(), "no mount of an environment is visible on the host"


@pytest.mark.parametrize("rootless", list(MODES.values()), ids=list(MODES))
def test_a_crashed_servers_environments_and_cgroups_are_cleaned_up(server_factory, tmp_path, rootless):
    # Rootless, both servers share one set of delegated cgroups, as one service's runs do.
    if rootless:
        from rootless import Rootless
        shared = Rootless(subids=rootless != "no-subids")
        try:
            crash_and_restart(server_factory, shared)
        finally:
            for srv in server_factory.started:
                srv.teardown()
            shared.cleanup()
    else:
        crash_and_restart(server_factory, False)


def test_rootless_without_delegated_cgroups_still_isolates_and_says_so(server_factory):
    from rootless import Rootless
    bare = Rootless(delegate=False)
    try:
        s = require_namespace(server_factory(extra_args=("--sandbox", "auto"), rootless=bare))
        log = s.log_text()
        assert "no cgroups" in log and "Delegate=yes" in log, s.log_tail(20)
        lam = s.lambda_client()
        ident = attempt(lam, deploy(lam, "cont-nocg"), {"identity": True})["results"]["identity"]
        assert (ident["uid"], ident["gid"], ident["groups"]) == (993, 990, [])
        assert int(ident["cap_eff"], 16) == 0 and ident["seccomp"] == "2"
        assert len(ident["pids"]) <= 3 and 1 in ident["pids"], ident["pids"]
        s.stop_cleanly()
    finally:
        for srv in server_factory.started:
            srv.teardown()
        bare.cleanup()


def test_where_namespaces_are_refused_the_server_falls_back_to_the_process_tier_and_says_so(server_factory):
    """As in a container that forbids user namespaces: the server starts in a user namespace of its own whose
    max_user_namespaces is 0, so it may not give an environment one. `auto` must probe, fall back, say why,
    and still run functions."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (util-linux) to make a user namespace that refuses more")
    refusing = ("unshare", "--user", "--map-root-user", "--", "sh", "-c",
                'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh")
    s = server_factory(extra_args=("--sandbox", "auto"), prefix=refusing)
    assert s.sandbox == "process", s.log_tail(20)
    log = s.log_text()
    assert "WARNING: the namespace sandbox is unavailable" in log, s.log_tail(20)
    assert "NOT isolated" in log, "the process tier says it isolates nothing"
    lam = s.lambda_client()
    name = unique_name("fallback")
    create_function(lam, name, python_zip(), Timeout=30)
    inv = invoke(lam, name, {"hello": "world"})
    assert inv.status == 200 and inv.function_error is None, inv.raw


def crash_and_restart(server_factory, rootless) -> None:
    import signal
    import time

    from helpers import alive, descendants

    first = require_namespace(server_factory(extra_args=("--sandbox", "auto"), rootless=rootless))
    lam = first.lambda_client()
    attempt(lam, deploy(lam, "cont-crash"), {"ticker": True})
    pid = first.proc.pid
    envs = descendants(pid)
    assert envs and _cgroup_dirs(pid)
    # Among them the pastas, which die with the server (their death signal), not at the next start.
    connected = pastas(envs)
    assert connected or shutil.which("pasta") is None
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    first.proc = None
    # Its environments are sent SIGKILL as it dies; a frozen one (cgroup v1 freezer) dies only once thawed,
    # which the next server does when it removes the leftovers of the dead one.
    deadline = time.monotonic() + 10
    while any(alive(p, envs[p]) for p in connected) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p, envs[p]) for p in connected), "pasta outlived a crashed server"
    second = require_namespace(server_factory(extra_args=("--sandbox", "auto"), rootless=rootless))
    assert _cgroup_dirs(pid) == [], "leftover cgroups of a crashed server are removed at start"
    deadline = time.monotonic() + 10
    while any(alive(p, start) for p, start in envs.items()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p, start) for p, start in envs.items()), "environments outlived their server"
    assert second.sandbox == "namespace"


def test_a_crashed_servers_tmp_disks_are_gone_after_a_restart(server_factory):
    import signal

    s = require_namespace(server_factory(extra_args=("--sandbox", "auto")))
    lam = s.lambda_client()
    name = deploy(lam, "cont-crash-tmp")
    # A frozen environment (its /tmp mounted, a file in it) outlives a SIGKILLed server until the next start
    # thaws and kills it.
    attempt(lam, name, {"write": ["/tmp/kept"]})
    require_disk_tmp(lam, srv=s, name=name)
    before = loop_devices_into(s.data_dir)
    old_pid = s.proc.pid
    assert any(Path(b).name.startswith(f"{old_pid}-") for b in before.values()), before
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=10)
    s.proc = None
    s.start()  # the same data dir
    deadline = time.monotonic() + 10
    left = before
    while time.monotonic() < deadline:
        left = {d: b for d, b in loop_devices_into(s.data_dir).items() if Path(b).name.startswith(f"{old_pid}-")}
        if not left:
            break
        time.sleep(0.1)
    assert left == {}, f"the crashed server's /tmp disks are still attached: {left}"
    assert [p.name for p in (s.data_dir / "sandbox" / "tmp").iterdir() if p.name.startswith(f"{old_pid}-")] == []
    # The new server makes its own and serves.
    assert attempt(s.lambda_client(), name, {"read": ["/tmp"]})["results"]["read /tmp"]["listing"] == []
