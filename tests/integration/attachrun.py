# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the cni_attach / cni_facts tests: the node, its dirs, probes.

`run_on_node` is ansiblerun.run_module entering only the node's *network*
namespace (nsenter --net). `ip netns exec` also gives the command a private
mount namespace (mounts made inside never propagate out), so a namespace
cni_attach creates under /var/run/netns would vanish with the ansible run;
a real node has no such wrapper, and the probe must outlive the task.

Safety: probes are named by `ProbeNames` with the test run's unique prefix
and deleted by exact name in the fixture finalizer, even on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, List, Optional, Sequence

from ansiblerun import run_module
from cnitest import NETNS_DIR, NetNS, unique_name


def run_on_node(
    module: str,
    args: Dict[str, Any],
    node: Optional[NetNS],
    check: bool = False,
    diff: bool = False,
    timeout: float = 180,
    env: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    """The module's result dict, run in `node`'s network namespace only (nsenter --net)."""
    prefix = ["nsenter", "--net=" + node.path, "--"] if node is not None else []
    return run_module(module, args, check=check, diff=diff, timeout=timeout, prefix=prefix, env=env)


class ProbeNames:
    """Unique probe names; whatever namespace carries one is deleted at teardown."""

    def __init__(self) -> None:
        self.names: List[str] = []

    def new(self, tag: str = "pr") -> str:
        name = unique_name(tag)
        self.names.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.names:
            if os.path.lexists(os.path.join(NETNS_DIR, name)):
                subprocess.run(["ip", "netns", "delete", name], check=False)


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def leases(data_dir: str, network: str) -> List[str]:
    d = os.path.join(data_dir, network)
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f != "lock" and not f.startswith(("last_reserved_ip", ".")))


def cache_files(cache_dir: str) -> List[str]:
    d = os.path.join(cache_dir, "results")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def seed_conf(data_dir: str, version: str = "0.3.1", bridge: str = "nodenet-bridge", ipam: str = "nodenet-host-local", **range_over: str) -> Dict[str, Any]:
    """The operator's config from seed.md, with our type names and a test dataDir."""
    rng = {"subnet": "10.13.0.0/22", "rangeStart": "10.13.3.8", "rangeEnd": "10.13.3.253", "gateway": "10.13.3.254"}
    rng.update(range_over)
    return {
        "cniVersion": version,
        "name": "mynet",
        "type": bridge,
        "bridge": "cni0",
        "isDefaultGateway": True,
        "forceAddress": False,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {"type": ipam, "ranges": [[rng]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }


def conflist(
    name: str,
    data_dir: str,
    subnet: str,
    bridge: str = "cni0",
    version: str = "1.0.0",
    bridge_type: str = "nodenet-bridge",
    ipam_type: str = "nodenet-host-local",
    then: Sequence[Dict[str, Any]] = (),
) -> Dict[str, Any]:
    """A network list: a gateway bridge with host-local on `subnet`, then the plugins in `then`."""
    ipam = {"type": ipam_type, "dataDir": data_dir, "ranges": [[{"subnet": subnet}]]}
    bridge_conf = {"type": bridge_type, "bridge": bridge, "isGateway": True, "ipam": ipam}
    return {"cniVersion": version, "name": name, "plugins": [bridge_conf, *then]}


class NodeDirs:
    """A node's CNI paths in a temp dir: conf dir, cache dir, dataDir."""

    def __init__(self, base: str, bin_dirs: List[str]) -> None:
        self.conf_dir = os.path.join(base, "net.d")
        self.cache_dir = os.path.join(base, "cache")
        self.data_dir = os.path.join(base, "ipam")
        self.bin_dirs = list(bin_dirs)
        for d in (self.conf_dir, self.data_dir):
            os.makedirs(d, exist_ok=True)

    def write(self, filename: str, conf: Any) -> str:
        path = os.path.join(self.conf_dir, filename)
        with open(path, "w") as f:
            f.write(conf if isinstance(conf, str) else json.dumps(conf, indent=2))
        return path

    def args(self, **more: Any) -> Dict[str, Any]:
        out: Dict[str, Any] = {"conf_dir": self.conf_dir, "cache_dir": self.cache_dir, "bin_dir": self.bin_dirs}
        out.update(more)
        return out
