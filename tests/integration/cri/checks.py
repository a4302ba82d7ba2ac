# SPDX-License-Identifier: GPL-3.0-or-later
"""What a node looks like from outside: leases, links, libcni's cache, NAT rules, traffic into pods.

Traffic goes only between namespaces the test (or its containerd) made:
the node's namespace and the pods' namespaces inside it.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from typing import IO, List

from cnitest import PONG_CLIENT, pong_server

from .node import NET_NAME, ContainerdNode

SERVER = pong_server(16)
CLIENT = PONG_CLIENT
NODE_LINKS = {"lo", "cni0"}


def read_lines(stream: IO[bytes], count: int, timeout: float) -> List[str]:
    """Up to `count` lines from a child's pipe, waiting at most `timeout` seconds in all."""
    lines: List[str] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream.fileno(), 4096)
        if not chunk:
            break
        *done, buf = (buf + chunk).split(b"\n")
        lines += [line.decode() for line in done]
    return lines[:count]


def leases(node: ContainerdNode, net: str = NET_NAME) -> List[str]:
    """host-local's lease files (one per allocated address); bookkeeping files are not leases."""
    d = os.path.join(node.data_dir, net)
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f != "lock" and not f.startswith("last_reserved_ip"))


def extra_links(node: ContainerdNode) -> List[str]:
    """Links in the node's namespace besides lo and the bridge: the pods' host veths."""
    assert node.netns is not None
    with node.netns.ipr() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(n for n in names if n not in NODE_LINKS)


def cache_entries(node: ContainerdNode) -> List[str]:
    """libcni's cached results (cniCacheV1) written by containerd, seen through its overlay."""
    d = os.path.join(node.cache_dir, "results")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def ruleset(node: ContainerdNode) -> str:
    """Every NAT/filter rule in the node's namespace: nftables and both iptables families (no timestamps)."""
    assert node.netns is not None
    text = ""
    for argv in (["nft", "list", "ruleset"], ["iptables-save"], ["ip6tables-save"]):
        proc = node.netns.run(argv, check=False)
        text += proc.stdout.decode()
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def in_pod(node: ContainerdNode, sandbox_id: str, argv: List[str], timeout: float = 30, check: bool = False) -> subprocess.CompletedProcess:
    """Run a host tool inside the pod's network namespace (the pause process holds it)."""
    return subprocess.run(["nsenter", "--net=" + node.pod_netns(sandbox_id)] + argv, capture_output=True, timeout=timeout, check=check)


def ping_from_pod(node: ContainerdNode, sandbox_id: str, address: str) -> bool:
    # one reply within 5 s, a probe every second: a port still coming up does not fail the test
    return in_pod(node, sandbox_id, ["ping", "-c", "1", "-w", "5", address], timeout=15).returncode == 0


def connect(prefix: List[str], address: str, port: int) -> str:
    """Connect from a namespace (`prefix` enters it) and return what the server said."""
    proc = subprocess.run(prefix + ["python3", "-c", CLIENT, address, str(port)], capture_output=True, timeout=20, check=False)
    out = proc.stdout.decode().strip()
    if out:
        return out
    err = proc.stderr.decode().strip().splitlines()
    return err[-1] if err else "(no answer, rc=%d)" % proc.returncode


class PodServer:
    """SERVER on port 80 inside a pod's network namespace, for the test's lifetime."""

    def __init__(self, node: ContainerdNode, sandbox_id: str) -> None:
        self.proc = subprocess.Popen(["nsenter", "--net=" + node.pod_netns(sandbox_id), "python3", "-c", SERVER],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def __enter__(self) -> "PodServer":
        assert self.proc.stdout is not None
        lines = read_lines(self.proc.stdout, 1, timeout=30)
        if lines != ["ready"]:
            self.__exit__()
            raise RuntimeError("pod server did not start: %r" % lines)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
