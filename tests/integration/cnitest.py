# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for black-box plugin tests: namespaces and exec'ing a plugin.

Safety: every namespace is created here under a unique prefix and removed
by exact name; plugins run inside a test "host" namespace, never in the
root one, and nothing is linked to the root namespace.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

NETNS_DIR = "/var/run/netns"
# one prefix per test process: parallel runs never collide
RUN_PREFIX = "nnt%s-" % secrets.token_hex(2)
# NODENET_TEST_MODE=agent: every test "host" namespace a shim is exec'd in
# gets its own nodenet-agent (started on first use, stopped with the
# namespace), so the plugin suite runs through the agent; "fallback" (the
# default): no agent anywhere, the shims run the plugins in-process.
TEST_MODE = os.environ.get("NODENET_TEST_MODE", "fallback")
if TEST_MODE not in ("agent", "fallback"):
    raise RuntimeError("NODENET_TEST_MODE must be agent or fallback, not %r" % TEST_MODE)
# the agent launcher of the session's install (set by conftest's cni_bin)
AGENT_BIN = ""
_AGENT_START = threading.Lock()
SHIM_MARK = re.compile(r"^# Python \S+; agent 127\.0\.0\.1:\d+", re.M)


def unique_name(tag: str) -> str:
    return RUN_PREFIX + tag + "-" + secrets.token_hex(2)


def pong_server(connections: int) -> str:
    """A TCP server for `python3 -c` in a pod: port 80, "pong" to each of
    `connections` clients, gone after 30 s without one (it stops on its own)."""
    return (
        "import socket\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('0.0.0.0', 80)); s.listen(8); s.settimeout(30)\n"
        "print('ready', flush=True)\n"
        "for _ in range(%d):\n"
        "    try:\n"
        "        c,_a=s.accept()\n"
        "    except socket.timeout:\n"
        "        break\n"
        "    c.sendall(b'pong'); c.close()\n"
    ) % connections


# its client: `python3 -c PONG_CLIENT ADDRESS PORT` prints what the server said
PONG_CLIENT = (
    "import socket,sys\n"
    "c=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
    "print(c.recv(16).decode())\n"
)


class NetNS:
    """A named network namespace made by a test; `ip netns` is used only to create/delete."""

    def __init__(self, tag: str) -> None:
        self.agent: Optional[AgentProcess] = None
        self.shim_calls = 0
        self.name = unique_name(tag)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.path = os.path.join(NETNS_DIR, self.name)
        self.run(["ip", "link", "set", "lo", "up"])

    def run(self, argv: List[str], check: bool = True, timeout: float = 30, **kw: Any) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name] + argv, check=check, timeout=timeout, capture_output=True, **kw)

    def ipr(self):
        """A pyroute2 handle inside the namespace (for assertions)."""
        from pyroute2 import NetNS as PRNetNS

        if not self.exists():  # pyroute2 would silently create it again
            raise AssertionError("netns %s does not exist" % self.name)
        return PRNetNS(self.name)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def start_agent(self, agent_bin: str, *args: str) -> "AgentProcess":
        self.agent = AgentProcess(self, agent_bin, *args)
        return self.agent

    def delete(self) -> None:
        agent, self.agent = self.agent, None
        summary = agent.stop() if agent is not None else ""
        if self.exists():
            subprocess.run(["ip", "netns", "delete", self.name], check=False)
        # every shim exec'd here must have been served by the agent (none fell back)
        if TEST_MODE == "agent" and self.shim_calls:
            match = re.search(r"served (\d+) calls", summary)
            served = int(match.group(1)) if match else -1
            assert served == self.shim_calls, "agent in %s served %d of %d shim calls:\n%s" % (self.name, served, self.shim_calls, summary)

    def ping(self, address: str, count: int = 1, timeout: int = 3) -> bool:
        argv = ["ping", "-c", str(count), "-W", str(timeout), address]
        if ":" in address:
            argv.insert(1, "-6")
        return self.run(argv, check=False, timeout=timeout * count + 5).returncode == 0


class AgentProcess:
    """A nodenet-agent in a test namespace; stop() ends it (SIGTERM, then SIGKILL) and returns its stderr."""

    def __init__(self, ns: NetNS, agent_bin: str, *args: str) -> None:
        self.ns = ns
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, agent_bin] + list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        ready, _w, _x = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else b""
        if line != b"ready\n":
            self.stop()
            raise AssertionError("agent in %s did not start: %r" % (ns.name, line))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        return err


def is_shim(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return bool(SHIM_MARK.search(f.read(1024).decode(errors="replace")))
    except OSError:
        return False


@dataclass
class PluginRun:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Dict[str, Any]:
        return json.loads(self.stdout)

    def ok(self) -> "PluginRun":
        assert self.rc == 0, "plugin failed rc=%d\nstdout=%s\nstderr=%s" % (self.rc, self.stdout, self.stderr)
        return self


def exec_plugin(
    plugin: str,
    command: str,
    conf: Optional[Dict[str, Any]] = None,
    *,
    host: Optional[NetNS] = None,
    netns: str = "",
    ifname: str = "eth0",
    container_id: str = "c0ffee",
    cni_path: str = "",
    cni_args: str = "",
    stdin: Optional[bytes] = None,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 60,
) -> PluginRun:
    """Exec a plugin binary exactly as a runtime does: env + stdin, inside `host`."""
    full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if command:
        full_env["CNI_COMMAND"] = command
    full_env.update({"CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_PATH": cni_path or os.path.dirname(plugin)})
    if cni_args:
        full_env["CNI_ARGS"] = cni_args
    if env is not None:
        full_env.update(env)
        full_env = {k: v for k, v in full_env.items() if v is not None}
    data = stdin if stdin is not None else json.dumps(conf or {}).encode()
    argv = [plugin]
    if host is not None:
        argv = ["ip", "netns", "exec", host.name] + argv
        if TEST_MODE == "agent" and is_shim(plugin):
            with _AGENT_START:  # tests exec in parallel threads too
                if host.agent is None:
                    host.start_agent(AGENT_BIN)
                host.shim_calls += 1
    proc = subprocess.run(argv, input=data, env=full_env, capture_output=True, timeout=timeout, check=False)
    return PluginRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
