# SPDX-License-Identifier: GPL-3.0-or-later
"""Everything the benchmark creates, and its removal by exact name.

Safety (shared machine): namespaces are created only here, under a prefix
unique to this run, and deleted by exact name in `close()`, which the
caller runs in `finally` and on SIGINT/SIGTERM/SIGHUP. Plugins run only
inside a benchmark host namespace; nothing touches the root namespace's
links, addresses, routes or firewall, and nothing links to it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from typing import List

NETNS_DIR = "/var/run/netns"


class Sandbox:
    def __init__(self) -> None:
        self.prefix = "nnbench%s-" % secrets.token_hex(3)
        self.namespaces: List[str] = []
        self.root = tempfile.mkdtemp(prefix=self.prefix)
        self._closed = False

    def netns(self, tag: str) -> str:
        """Create a named netns; returns its name (path: netns_path(name))."""
        name = self.prefix + tag
        if len(name) > 64 or "/" in name:
            raise ValueError("bad netns name %r" % name)
        self.namespaces.append(name)  # registered first: removed even if add half-fails
        subprocess.run(["ip", "netns", "add", name], check=True, timeout=30, capture_output=True)
        return name

    def netns_many(self, tag: str, count: int) -> List[str]:
        return [self.netns("%s%d" % (tag, i)) for i in range(count)]

    def delete_netns(self, names: List[str]) -> None:
        for name in names:
            if name in self.namespaces:
                _delete_netns(name)
                self.namespaces.remove(name)

    def dir(self, tag: str) -> str:
        path = os.path.join(self.root, tag)
        os.makedirs(path)
        return path

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in reversed(self.namespaces):
            _delete_netns(name)
        self.namespaces = []
        shutil.rmtree(self.root, ignore_errors=True)

    def leftovers(self) -> List[str]:
        """Our namespaces still present after close() (should be none)."""
        try:
            return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(self.prefix))
        except OSError:
            return []


def _delete_netns(name: str) -> None:
    if os.path.exists(os.path.join(NETNS_DIR, name)):
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=30, capture_output=True)


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def stop_process(proc: "subprocess.Popen", timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL when it has not exited within `timeout` seconds (an agent
    finishing its calls in flight)."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def interrupt_on_signals() -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so `finally` blocks run."""

    def raise_interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt("signal %d" % signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)
