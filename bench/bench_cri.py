# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: a pod's network through containerd's CRI, our plugins against the Go reference plugins.

What a kubelet waits for: RunPodSandbox (sandbox + cni-loopback + bridge,
host-local, portmap ADD) and StopPodSandbox + RemovePodSandbox (the DELs,
twice). Two private containerd nodes (tests/integration/cri), one per
implementation, same conflist; pods alternate Go, Python, Go, ... so
machine noise hits both; each node's first pod is a warm-up and not
counted. A benchmark, not a test: it prints medians and the Python/Go ratio.
With `--mode agent` (the default, a node's setup) a nodenet-agent runs in
our node, in containerd's network and mount namespaces, and serves the
shims containerd execs; `--mode fallback` runs without it.

    sudo .venv/bin/python bench/bench_cri.py [--pods 10] [--no-hostport] [--mode agent|fallback] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from bench_plugins import GO_BIN, NODE_PYTHON, load_installer, machine_info  # noqa: E402
from cri.api import CRIError  # noqa: E402
from cri.node import ContainerdNode  # noqa: E402
from report import IMPLS, Figures, median, p95  # noqa: E402
from report import table as figure_table  # noqa: E402


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--pods", type=int, default=10, help="timed pods per implementation (plus one warm-up)")
    p.add_argument("--no-hostport", action="store_true", help="pods without a port mapping (portmap then does nothing)")
    p.add_argument("--go-bin", default=GO_BIN)
    p.add_argument("--python", default=NODE_PYTHON, help="the interpreter our plugins run on")
    p.add_argument("--mode", choices=("agent", "fallback"), default="agent",
                   help="agent: a nodenet-agent in our node serves the shims (default); fallback: no agent")
    p.add_argument("--json", help="write the figures as JSON")
    return p.parse_args(argv)


def install_ours(interpreter: str, work: str) -> str:
    installer = load_installer()
    bin_dir = os.path.join(work, "pybin")
    names = installer.plugin_names(list(installer.PLUGINS), installer.DEFAULT_PREFIX, reference_names=True, agent=True)
    installer.install_local(bin_dir, names, interpreter)
    return bin_dir


def start_agent(node: ContainerdNode, bin_dir: str) -> subprocess.Popen:
    """nodenet-agent where containerd execs the shims: its network namespace and its mount view (the token dir)."""
    agent = subprocess.Popen(node.enter() + [os.path.join(bin_dir, "nodenet-agent")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = agent.stdout.readline() if agent.stdout else b""
    if line != b"ready\n":
        agent.kill()
        agent.wait(timeout=30)
        raise RuntimeError("nodenet-agent did not start in %s: %r" % (node.name, line))
    return agent


def agent_calls(node: ContainerdNode) -> Optional[int]:
    """Calls the node's agent served (its stats), asked from inside the node."""
    code = "import json, sys; sys.path.insert(0, %r); " % collection_parent() + \
        "from ansible_collections.nodenet.cni.plugins.module_utils.cni.agent import client; print(json.dumps(client.stats()))"
    proc = subprocess.run(node.enter() + [sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    try:
        return int(json.loads(proc.stdout)["calls"])
    except (ValueError, KeyError, TypeError):
        return None


def collection_parent() -> str:
    return os.path.join(ROOT, "collections")


def stop_agent(agent: subprocess.Popen) -> None:
    agent.terminate()
    try:
        agent.wait(timeout=120)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait(timeout=30)


def measure(nodes: Dict[str, ContainerdNode], pods: int, hostport: bool) -> Dict[str, Dict[str, List[float]]]:
    samples: Dict[str, Dict[str, List[float]]] = {impl: {"run": [], "remove": [], "failed": []} for impl in IMPLS}
    for n in range(pods + 1):
        order = IMPLS if n % 2 == 0 else tuple(reversed(IMPLS))
        for impl in order:
            node = nodes[impl]
            mappings = [{"container_port": 80, "host_port": 18080, "protocol": "tcp"}] if hostport else []
            try:
                start = time.monotonic()
                sandbox = node.run_pod("bench-%d" % n, port_mappings=mappings)
                ran = time.monotonic()
                node.remove_pod(sandbox)
                removed = time.monotonic()
            except CRIError as exc:
                print("%s: pod %d: %s" % (impl, n, exc), file=sys.stderr)
                samples[impl]["failed"].append(1.0)
                continue
            if n > 0:  # the first pod creates the bridge and warms the caches
                samples[impl]["run"].append((ran - start) * 1000)
                samples[impl]["remove"].append((removed - ran) * 1000)
    return samples


def run(pods: int, hostport: bool, go_bin: str, python: str, mode: str) -> Tuple[Figures, Dict[str, object]]:
    """Both nodes, the timed pods, the figures; everything made here is removed before it returns."""
    info: Dict[str, object] = {"mode": mode}
    with tempfile.TemporaryDirectory(prefix="nodenet-bench-cri-") as work:
        bins = {"go": go_bin, "py": install_ours(python, work)}
        nodes: Dict[str, ContainerdNode] = {}
        agent: Optional[subprocess.Popen] = None
        try:
            for impl in IMPLS:
                nodes[impl] = ContainerdNode("bench" + impl, bins[impl]).start()
            if mode == "agent":
                agent = start_agent(nodes["py"], bins["py"])
            samples = measure(nodes, pods, hostport)
            if agent is not None:
                info["agent_calls"] = agent_calls(nodes["py"])
        finally:
            if agent is not None:
                stop_agent(agent)
            for node in nodes.values():
                node.close()
    figures = Figures()
    for key, label in (("run", "RunPodSandbox"), ("remove", "StopPodSandbox + RemovePodSandbox")):
        figures.declare("cri_" + key + "_median", "CRI " + label + ", median", "ms")
        figures.declare("cri_" + key + "_p95", "CRI " + label + ", p95", "ms")
        for impl in IMPLS:
            values = samples[impl][key]
            figures.set("cri_" + key + "_median", impl, median(values), len(values))
            figures.set("cri_" + key + "_p95", impl, p95(values), len(values))
    figures.declare("cri_failed", "CRI failed pods", "count", is_count=True)
    for impl in IMPLS:
        figures.set("cri_failed", impl, float(len(samples[impl]["failed"])), pods + 1)
    return figures, info


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_cri.py needs root (namespaces, containerd)", file=sys.stderr)
        return 2
    started = time.monotonic()
    info = machine_info(opts.go_bin, opts.python)
    figures, extra = run(opts.pods, not opts.no_hostport, opts.go_bin, opts.python, opts.mode)
    info.update(extra)
    info["load_avg_after"] = os.getloadavg()
    info["seconds"] = round(time.monotonic() - started, 1)
    print("containerd CRI, %d pods per implementation%s, interleaved, ours %s; load avg before %s after %s" % (
        opts.pods, "" if opts.no_hostport else " with a hostPort",
        "served by a nodenet-agent (%s calls)" % info.get("agent_calls") if opts.mode == "agent" else "without an agent",
        info["load_avg_before"], info["load_avg_after"]))
    print(figure_table(figures))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump({"params": vars(opts), "machine": info, "figures": [fig.to_dict() for fig in figures]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
