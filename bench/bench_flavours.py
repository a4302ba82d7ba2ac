# SPDX-License-Identifier: GPL-3.0-or-later
"""Roll-out cost: playbooks/site.yml on a lab, reached by labnode and by real SSH, side by side.

    sudo .venv/bin/python bench/bench_flavours.py [--nodes 3] [--rounds 1] [--json out.json]

For each flavour (the labnode connection: nsenter as root on the controller's
Python; ssh: an sshd in each node, a non-root login with become through sudo,
pipelining, the node's own python3) it brings a lab up, times the first
converge of site.yml, a second run that must change nothing (`--skip-tags
probe`, as molecule's idempotence step), and lab_up/lab_down, then removes the
lab. Flavours alternate round by round, so load from elsewhere hits both. The
table gives the medians and the ssh/labnode ratio.

A benchmark, not a test: it measures and prints, and never fails because
something is slow. A run that failed is reported (and its figure left out).
Needs root (network namespaces). Every lab has a unique name (nnbr<hex>) and
is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from report import median  # noqa: E402  (bench/ is not a package)
from sandbox import interrupt_on_signals  # noqa: E402

FLAVOURS = ("labnode", "ssh")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
FIGURES = (
    ("lab_up", "lab_up"),
    ("converge", "site.yml, first converge"),
    ("rerun", "site.yml again (--skip-tags probe)"),
    ("lab_down", "lab_down"),
)


def ansible_env() -> Dict[str, str]:
    env = dict(os.environ)
    # the nodes' interpreter comes from the inventory (labnode) or discovery (ssh), never from here
    env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", PATH=os.path.dirname(sys.executable) + ":" + env.get("PATH", ""))
    return env


class Run:
    """One ansible-playbook run: wall time, recap, and whether it worked."""

    def __init__(self, argv: List[str], timeout: float) -> None:
        start = time.monotonic()
        proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout, check=False)
        self.seconds = time.monotonic() - start
        self.ok = proc.returncode == 0
        self.changed = sum(int(m.group(3)) for m in RECAP.finditer(proc.stdout) if m.group(1) != "localhost")
        self.tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])


def playbook(name: str, *extra: str, timeout: float = 1200) -> Run:
    return Run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.path.join(ROOT, "playbooks", name + ".yml"), *extra], timeout)


def one_round(flavour: str, nodes: int, results: Dict[str, Dict[str, List[float]]], problems: List[str], quiet: bool) -> None:
    lab = "nnbr%s" % secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="nnbench-rollout-") as tmp:
        inventory = os.path.join(tmp, "lab.yml")
        lab_args = ["-e", "lab_name=" + lab, "-e", "lab_inventory_path=" + inventory]
        runs: Dict[str, Run] = {}
        try:
            runs["lab_up"] = playbook("lab_up", *lab_args, "-e", "lab_node_count=%d" % nodes, "-e", "lab_connection=" + flavour)
            if runs["lab_up"].ok:
                runs["converge"] = playbook("site", "-i", inventory)
                if runs["converge"].ok:
                    runs["rerun"] = playbook("site", "-i", inventory, "--skip-tags", "probe")
        finally:
            runs["lab_down"] = playbook("lab_down", *lab_args)
    for key, run in runs.items():
        if not run.ok:
            problems.append("%s %s failed (lab %s):\n%s" % (flavour, key, lab, run.tail))
            continue
        results[flavour][key].append(run.seconds)
        if key in ("converge", "rerun"):
            results[flavour][key + "_changed"].append(run.changed)
        if not quiet:
            print("  %-8s %-9s %6.1f s%s" % (flavour, key, run.seconds, "  changed=%d" % run.changed if key in ("converge", "rerun") else ""), file=sys.stderr)


def fmt(value: Optional[float], unit: str = " s") -> str:
    return "n/a" if value is None else "%.1f%s" % (value, unit)


def report(results: Dict[str, Dict[str, List[float]]], nodes: int, rounds: int, problems: List[str]) -> str:
    lines = ["Roll-out on a lab of %d nodes, %d round(s) per flavour (medians)" % (nodes, rounds), ""]
    lines.append("| %-36s | %10s | %10s | %11s |" % ("figure", "labnode", "ssh", "ssh/labnode"))
    lines.append("|%s|%s|%s|%s|" % ("-" * 38, "-" * 12, "-" * 12, "-" * 13))
    for key, label in FIGURES:
        a, b = median(results["labnode"][key]), median(results["ssh"][key])
        ratio = "%.2fx" % (b / a) if a and b else "n/a"
        lines.append("| %-36s | %10s | %10s | %11s |" % (label, fmt(a), fmt(b), ratio))
    a, b = median(results["labnode"]["rerun_changed"]), median(results["ssh"]["rerun_changed"])
    lines.append("| %-36s | %10s | %10s | %11s |" % ("changed tasks on the re-run (want 0)", fmt(a, ""), fmt(b, ""), ""))
    if problems:
        lines += ["", "Problems seen:"] + ["- " + p.replace("\n", "\n    ") for p in problems]
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=3, help="lab nodes (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per flavour, alternating (default 1)")
    parser.add_argument("--flavours", default=",".join(FLAVOURS), help="comma-separated subset of labnode,ssh")
    parser.add_argument("--json", help="write the figures and problems as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_flavours: needs root (network namespaces)", file=sys.stderr)
        return 2
    interrupt_on_signals()  # SIGTERM too runs the labs' lab_down
    flavours = [f for f in opts.flavours.split(",") if f]
    if not flavours or set(flavours) - set(FLAVOURS):
        print("bench_flavours: --flavours takes labnode and/or ssh", file=sys.stderr)
        return 2
    results: Dict[str, Dict[str, List[float]]] = {f: {k: [] for k in [key for key, dummy in FIGURES] + ["converge_changed", "rerun_changed"]} for f in FLAVOURS}
    problems: List[str] = []
    for round_number in range(opts.rounds):
        # alternate the order, so neither flavour always runs on a warmer (or busier) machine
        for flavour in flavours if round_number % 2 == 0 else list(reversed(flavours)):
            one_round(flavour, opts.nodes, results, problems, opts.quiet)
    print(report(results, opts.nodes, opts.rounds, problems))
    if opts.json:
        figures = {f: {k: {"median": median(v), "samples": v} for k, v in per.items()} for f, per in results.items()}
        with open(opts.json, "w") as out:
            json.dump({"nodes": opts.nodes, "rounds": opts.rounds, "figures": figures, "problems": problems}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
