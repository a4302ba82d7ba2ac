# SPDX-License-Identifier: GPL-3.0-or-later
"""A/B of served bridge+host-local ADDs (and DELs) through the shims, call by call.

    sudo .venv/bin/python bench/ab_add.py --variant A=/path/to/checkout --variant B=. [--go] [--pods 100] [--rounds 1]

Each variant is a checkout (a tree with `collections/ansible_collections/
nodenet/cni` linking to itself, as `make setup` leaves it): its plugins are
installed into their own bin dir (`installer.install_local`, the bench's
way) and served by their own `nodenet-agent` in their own benchmark host
namespace; `--go` adds Debian's Go plugins in a host namespace of their
own. One process times every call: before each exec it enters the
variant's host namespace (setns on its only thread, so the exec'd shim
starts there, as under `ip netns exec`), execs the plugin as a runtime
does (env, stdin pipe, stdout pipe; `wait4`'s rusage of the exec tree),
and the variants take turns call by call (the order rotating), so load
from elsewhere on the machine hits each alike. Prints per variant the
median, quartiles and p95 of ADD and DEL wall time and the exec tree's
CPU, and the median of the pairwise ratios against the first variant.

`--gate FILE` stops after the warm-up, prints the agents' pids and waits
(up to 10 minutes) for FILE to exist: time to attach strace or perf.

Safety: namespaces only through bench/sandbox.py (unique prefix, deleted by
exact name at the end, also on failure or a signal); the timing process
returns to the namespace it started in before anything else runs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cniconf  # noqa: E402
from sandbox import Sandbox, interrupt_on_signals, netns_path, stop_process  # noqa: E402

CLONE_NEWNET = 0x40000000
GO_BIN = "/usr/lib/cni"
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


INSTALL = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer
names = installer.plugin_names(["bridge", "host-local", "loopback"], installer.DEFAULT_PREFIX, reference_names=True, agent=True)
digest = installer.install_local(sys.argv[2], names, sys.argv[3])
print(json.dumps(installer.runtime_dir_for(installer.default_lib_dir(sys.argv[2]), digest)))
"""


class Variant:
    def __init__(self, label: str, bin_dir: str, host: str, data: str, agent: bool) -> None:
        self.label, self.bin_dir, self.host, self.data, self.agent = label, bin_dir, host, data, agent
        self.proc: Any = None
        self.fd = -1
        self.pods: List[str] = []
        self.ids: List[str] = []
        self.results: Dict[int, str] = {}
        self.samples: Dict[str, List[Dict[str, float]]] = {"ADD": [], "DEL": []}


def run_op(argv: List[str], env: Dict[str, str], stdin: bytes) -> Dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        proc.stdin.write(stdin)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    except BrokenPipeError:
        pass
    out = proc.stdout.read()  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()  # type: ignore[union-attr]
    return {"rc": proc.returncode, "wall": wall * 1000.0, "cpu": (usage.ru_utime + usage.ru_stime) * 1000.0, "out": out.decode(errors="replace")}


def call(v: Variant, command: str, i: int) -> Dict[str, Any]:
    conf = cniconf.netconf(v.data)
    if command == "DEL":
        conf = cniconf.with_prev_result(conf, v.results.get(i, ""))
    env = cniconf.runtime_env(command, v.ids[i], v.pods[i], v.bin_dir)
    setns(v.fd)
    try:
        r = run_op([os.path.join(v.bin_dir, "bridge")], env, json.dumps(conf).encode())
    finally:
        setns(HOME_FD)
    if r["rc"] != 0:
        raise RuntimeError("%s %s pod %d failed: %s" % (v.label, command, i, r["out"][:500]))
    if command == "ADD":
        v.results[i] = r["out"]
    return r


def process_cpu(v: Variant) -> Tuple[float, float]:
    """The agent's threads' CPU time and run-queue wait so far, ms (schedstat; 0 without an agent)."""
    if v.proc is None:
        return 0.0, 0.0
    run = wait = 0
    task_dir = "/proc/%d/task" % v.proc.pid
    for tid in os.listdir(task_dir):
        try:
            with open("%s/%s/schedstat" % (task_dir, tid)) as f:
                fields = f.read().split()
        except OSError:
            continue
        run += int(fields[0])
        wait += int(fields[1])
    return run / 1e6, wait / 1e6


def q(values: List[float], frac: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * frac))]


HOME_FD = -1


def main(argv: List[str]) -> int:
    global HOME_FD
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=CHECKOUT")
    ap.add_argument("--go", action="store_true")
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1, help="ADD all pods then DEL all pods, this many times")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--gate", default="")
    ap.add_argument("--json", default="")
    opts = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("ab_add: needs root (network namespaces)")
    interrupt_on_signals()
    HOME_FD = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    sandbox = Sandbox()
    sandbox.prefix = sandbox.prefix.replace("nnbench", "nnabadd")
    variants: List[Variant] = []
    try:
        specs = [tuple(s.split("=", 1)) for s in opts.variant] + ([("go", "")] if opts.go else [])
        for n, (label, checkout) in enumerate(specs):
            host = sandbox.netns("h%d" % n)
            subprocess.run(["ip", "netns", "exec", host, "ip", "link", "set", "lo", "up"], check=True, timeout=30)
            data = sandbox.dir("data%d" % n)
            if label == "go":
                v = Variant(label, GO_BIN, host, data, agent=False)
            else:
                bin_dir = sandbox.dir("bin%d" % n)
                collections = os.path.join(os.path.abspath(checkout), "collections")
                subprocess.run([sys.executable, "-c", INSTALL, collections, bin_dir, opts.python], check=True, timeout=120, stdout=subprocess.DEVNULL)
                v = Variant(label, bin_dir, host, data, agent=True)
                v.proc = subprocess.Popen(["ip", "netns", "exec", host, os.path.join(bin_dir, "nodenet-agent")], stdout=subprocess.PIPE)
                line = v.proc.stdout.readline()
                if line != b"ready\n":
                    raise RuntimeError("agent %s did not start: %r" % (label, line))
            v.fd = os.open(netns_path(host), os.O_RDONLY | os.O_CLOEXEC)
            v.pods = [netns_path(p) for p in sandbox.netns_many("v%dc" % n, opts.pods)]
            v.ids = [cniconf.new_container_id() for _p in v.pods]
            variants.append(v)
        # warm-up: the bridge, the agent's first call, the page cache
        for v in variants:
            call(v, "ADD", 0)
            call(v, "DEL", 0)
        if opts.gate:
            agent_pids = {}
            for v in variants:
                if v.proc is not None:
                    out = subprocess.run(["pgrep", "-P", str(v.proc.pid)], capture_output=True, text=True, check=False).stdout.split()
                    agent_pids[v.label] = [v.proc.pid] + [int(p) for p in out]
            print("gate: agents %s; waiting for %s" % (agent_pids, opts.gate), flush=True)
            deadline = time.monotonic() + 600
            while not os.path.exists(opts.gate) and time.monotonic() < deadline:
                time.sleep(0.2)
        load0 = os.getloadavg()[0]
        agent_cpu: Dict[str, Dict[str, List[float]]] = {v.label: {"ADD": [0.0, 0.0], "DEL": [0.0, 0.0]} for v in variants}
        for rnd in range(opts.rounds):
            for command in ("ADD", "DEL"):
                before = {v.label: process_cpu(v) for v in variants}
                for i in range(opts.pods):
                    turn = variants[(i + rnd) % len(variants):] + variants[: (i + rnd) % len(variants)]
                    for v in turn:
                        v.samples[command].append(call(v, command, i))
                for v in variants:
                    after = process_cpu(v)
                    agent_cpu[v.label][command][0] += after[0] - before[v.label][0]
                    agent_cpu[v.label][command][1] += after[1] - before[v.label][1]
        load1 = os.getloadavg()[0]
        report: Dict[str, Any] = {"load": [load0, load1], "variants": {}}
        print("load %.1f -> %.1f; %d pods x %d rounds" % (load0, load1, opts.pods, opts.rounds))
        base = variants[0]
        for command in ("ADD", "DEL"):
            for v in variants:
                walls = [s["wall"] for s in v.samples[command]]
                cpus = [s["cpu"] for s in v.samples[command]]
                ratio = ""
                if v is not base:
                    pairs = [a["wall"] / b["wall"] for a, b in zip(v.samples[command], base.samples[command])]
                    ratio = "  paired ratio to %s: %.3f" % (base.label, statistics.median(pairs))
                on_cpu, queued = (x / max(1, len(walls)) for x in agent_cpu[v.label][command])
                fmt = ("%s %-6s wall median %.2f (q1 %.2f q3 %.2f p95 %.2f) ms; exec tree cpu median %.2f ms; "
                       "agent threads per call: %.2f ms on cpu, %.2f ms runnable waiting%s")
                print(fmt % (command, v.label, statistics.median(walls), q(walls, .25), q(walls, .75), q(walls, .95), statistics.median(cpus),
                             on_cpu, queued, ratio))
                report["variants"].setdefault(v.label, {})[command] = {"wall": walls, "cpu": cpus}
        if opts.json:
            with open(opts.json, "w") as f:
                json.dump(report, f)
        return 0
    finally:
        setns(HOME_FD)
        for v in variants:
            if v.proc is not None:
                stop_process(v.proc)
        sandbox.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
