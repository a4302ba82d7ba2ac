# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for black-box plugin tests: namespaces and exec'ing a plugin.

Safety: every namespace is created here under a unique prefix and removed
by exact name; plugins run inside a test "host" namespace, never in the
root one, and nothing is linked to the root namespace.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

NETNS_DIR = "/var/run/netns"
# one prefix per test process: parallel runs never collide
RUN_PREFIX = "nnt%s-" % secrets.token_hex(2)


def unique_name(tag: str) -> str:
    return RUN_PREFIX + tag + "-" + secrets.token_hex(2)


class NetNS:
    """A named network namespace made by a test; `ip netns` is used only to create/delete."""

    def __init__(self, tag: str) -> None:
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

    def delete(self) -> None:
        if self.exists():
            subprocess.run(["ip", "netns", "delete", self.name], check=False)

    def ping(self, address: str, count: int = 1, timeout: int = 3) -> bool:
        argv = ["ping", "-c", str(count), "-W", str(timeout), address]
        if ":" in address:
            argv.insert(1, "-6")
        return self.run(argv, check=False, timeout=timeout * count + 5).returncode == 0


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
    proc = subprocess.run(argv, input=data, env=full_env, capture_output=True, timeout=timeout, check=False)
    return PluginRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
