# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: a pod's network through containerd's CRI, our plugins against the Go reference plugins.

What a kubelet waits for: RunPodSandbox (sandbox + cni-loopback + bridge,
host-local, portmap ADD) and StopPodSandbox + RemovePodSandbox (the DELs,
twice). Two private containerd nodes (tests/integration/cri), one per
implementation, same conflist; pods alternate Go, Python, Go, ... so
machine noise hits both; each node's first pod is a warm-up and not
counted. A benchmark, not a test: it prints medians and the Python/Go ratio.

    sudo .venv/bin/python bench/bench_cri.py [--pods 10] [--no-hostport] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Optional

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
    p.add_argument("--json", help="write the figures as JSON")
    return p.parse_args(argv)


def install_ours(interpreter: str, work: str) -> str:
    installer = load_installer()
    bin_dir = os.path.join(work, "pybin")
    names = installer.plugin_names(list(installer.PLUGINS), installer.DEFAULT_PREFIX, reference_names=True)
    installer.install_local(bin_dir, names, interpreter)
    return bin_dir


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


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_cri.py needs root (namespaces, containerd)", file=sys.stderr)
        return 2
    started = time.monotonic()
    info = machine_info(opts.go_bin, opts.python)
    with tempfile.TemporaryDirectory(prefix="nodenet-bench-cri-") as work:
        bins = {"go": opts.go_bin, "py": install_ours(opts.python, work)}
        nodes: Dict[str, ContainerdNode] = {}
        try:
            for impl in IMPLS:
                nodes[impl] = ContainerdNode("bench" + impl, bins[impl]).start()
            samples = measure(nodes, opts.pods, not opts.no_hostport)
        finally:
            for node in nodes.values():
                node.close()
    figures = Figures()
    for key, label in (("run", "RunPodSandbox"), ("remove", "StopPodSandbox + RemovePodSandbox")):
        figures.declare(key + "_median", label + ", median", "ms")
        figures.declare(key + "_p95", label + ", p95", "ms")
        for impl in IMPLS:
            values = samples[impl][key]
            figures.set(key + "_median", impl, median(values), len(values))
            figures.set(key + "_p95", impl, p95(values), len(values))
    figures.declare("failed", "failed pods", "count", is_count=True)
    for impl in IMPLS:
        figures.set("failed", impl, float(len(samples[impl]["failed"])), opts.pods + 1)
    info["load_avg_after"] = os.getloadavg()
    info["seconds"] = round(time.monotonic() - started, 1)
    print("containerd CRI, %d pods per implementation%s, interleaved; load avg before %s after %s" % (
        opts.pods, "" if opts.no_hostport else " with a hostPort", info["load_avg_before"], info["load_avg_after"]))
    print(figure_table(figures))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump({"params": vars(opts), "machine": info, "figures": [fig.to_dict() for fig in figures]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
