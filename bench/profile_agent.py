# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The agent's work for one call, without the shim: a warm process runs
`skel.run` for bridge+host-local ADD and DEL on worker threads, as
nodenet-agent does, and prints per-call medians (and a cProfile of the
ADDs and DELs with --profile).

    sudo .venv/bin/python bench/profile_agent.py [--pods 50] [--parallel 0] [--profile add|del]

A developer's tool: it installs this checkout's plugins into a temp dir
(`installer.install_local`, the bench's way), re-runs itself on the node's
interpreter (`--python`, default /usr/bin/python3) with that runtime dir
first on sys.path, moves itself into a throwaway namespace `nnprof<hex>-host`
and makes one `...-cN` namespace per pod; all of them are deleted by exact
name at the end, also on failure or Ctrl-C. Nothing is done in the root
namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def parse_args(argv: List[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=0, help="also time a burst of this many ADDs then DELs on that many threads")
    ap.add_argument("--profile", choices=("add", "del", "both"), default=None)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--dump", default="", help="with --profile: also write the raw cProfile stats to this file (pstats)")
    ap.add_argument("--plugin", choices=("bridge", "host-local"), default="bridge",
                    help="what the runtime calls (host-local: directly, as the bench's host-local figures)")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--child", nargs=3, metavar=("RUNTIME", "HOSTNS", "PREFIX"), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def parent(opts: argparse.Namespace) -> int:
    from bench_plugins import install_in_sandbox
    from sandbox import Sandbox, interrupt_on_signals

    interrupt_on_signals()
    sandbox = Sandbox()
    sandbox.prefix = sandbox.prefix.replace("nnbench", "nnprof")
    try:
        bin_dir, runtime = install_in_sandbox(sandbox, opts.python)
        host = sandbox.netns("host")
        count = max(opts.pods, opts.parallel)
        sandbox.netns_many("c", count)
        argv = [opts.python, "-I", os.path.abspath(__file__), "--pods", str(opts.pods), "--parallel", str(opts.parallel), "--top", str(opts.top),
                "--plugin", opts.plugin]
        if opts.profile:
            argv += ["--profile", opts.profile]
        if opts.dump:
            argv += ["--dump", os.path.abspath(opts.dump)]
        argv += ["--child", runtime, host, sandbox.prefix]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NNPROF_BIN": bin_dir, "NNPROF_DATA": sandbox.dir("data")}
        return subprocess.run(argv, env=env, timeout=1800, check=False).returncode
    finally:
        sandbox.close()


def child(opts: argparse.Namespace) -> int:
    runtime, host, prefix = opts.child
    sys.path.insert(0, runtime)
    import cniconf
    from nodenet_cni import skel
    from nodenet_cni.net import netns as nsmod

    fd = os.open("/var/run/netns/" + host, os.O_RDONLY)
    nsmod._setns(fd)  # the main thread (and so /proc/self) is the "node" from here on
    os.close(fd)
    os.system("ip link set lo up")
    from nodenet_cni.agent.server import SWITCH_INTERVAL

    sys.setswitchinterval(SWITCH_INTERVAL)  # as nodenet-agent runs
    for name in skel.PLUGIN_MODULES:
        skel.load_plugin(name)
    import netaddr  # noqa: F401
    import pyroute2  # noqa: F401

    bin_dir, data = os.environ["NNPROF_BIN"], os.environ["NNPROF_DATA"]
    conf = cniconf.netconf(data)
    stdin = json.dumps(conf).encode()
    count = max(opts.pods, opts.parallel)
    pods = ["/var/run/netns/%sc%d" % (prefix, i) for i in range(count)]
    ids = [cniconf.new_container_id() for _pod in pods]

    def call(command: str, i: int, prev: str = "") -> str:
        env = cniconf.runtime_env(command, ids[i], pods[i], bin_dir)
        body = json.dumps(cniconf.with_prev_result(conf, prev)).encode() if prev else stdin
        code, out, err = skel.run(opts.plugin, env, body)
        if code != 0:
            raise RuntimeError("%s pod %d: %s %s" % (command, i, out, err))
        return out

    profiler = None
    if opts.profile:
        import cProfile

        profiler = cProfile.Profile()
    times = {"ADD": [], "DEL": []}
    cpu = {"ADD": [], "DEL": []}

    def sequential() -> None:
        results = {}
        call("ADD", 0)  # warm-up: creates the bridge
        call("DEL", 0)
        for i in range(opts.pods):
            t0, c0 = time.perf_counter(), time.thread_time()
            if profiler and opts.profile in ("add", "both"):
                profiler.enable()
            results[i] = call("ADD", i)
            if profiler:
                profiler.disable()
            times["ADD"].append(time.perf_counter() - t0)
            cpu["ADD"].append(time.thread_time() - c0)
        for i in range(opts.pods):
            t0, c0 = time.perf_counter(), time.thread_time()
            if profiler and opts.profile in ("del", "both"):
                profiler.enable()
            call("DEL", i, results[i])
            if profiler:
                profiler.disable()
            times["DEL"].append(time.perf_counter() - t0)
            cpu["DEL"].append(time.thread_time() - c0)

    worker = threading.Thread(target=sequential)
    worker.start()
    worker.join()
    for what, samples in times.items():
        samples.sort()
        if samples:
            med = samples[len(samples) // 2] * 1000
            p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))] * 1000
            cpus = sorted(cpu[what])
            print("%s: median %.2f ms, p95 %.2f ms, min %.2f ms (%d); CPU of the worker thread: median %.2f ms" % (
                what, med, p95, samples[0] * 1000, len(samples), cpus[len(cpus) // 2] * 1000))
    if opts.parallel:
        outs = {}

        def burst(command: str) -> float:
            threads = []
            for i in range(opts.parallel):
                threads.append(threading.Thread(target=lambda i=i: outs.__setitem__(i, call(command, i, outs.get(i, "") if command == "DEL" else ""))))
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - t0

        print("%d parallel ADDs: %.0f ms" % (opts.parallel, burst("ADD") * 1000))
        print("%d parallel DELs: %.0f ms" % (opts.parallel, burst("DEL") * 1000))
    if profiler:
        import pstats

        stats = pstats.Stats(profiler)
        if opts.dump:
            stats.dump_stats(opts.dump)
        groups: dict = {}
        for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if "/pyroute2/" in filename:
                group = "pyroute2 " + filename.split("/pyroute2/", 1)[1].split("/")[0]
            elif "/nodenet_cni/" in filename:
                group = "nodenet_cni " + filename.split("/nodenet_cni/", 1)[1]
            elif "/netaddr/" in filename:
                group = "netaddr"
            elif filename == "~":
                group = "builtin " + func.split(" of ")[0][:40]
            else:
                group = "stdlib " + os.path.basename(filename)
            groups[group] = groups.get(group, 0.0) + tottime
        total = sum(groups.values()) or 1.0
        print("self time by module (share of the profiled calls):")
        for group, spent in sorted(groups.items(), key=lambda kv: -kv[1])[: opts.top]:
            print("  %5.1f%%  %s" % (spent * 100 / total, group))
        stats.sort_stats("cumulative").print_stats(opts.top)
        stats.sort_stats("tottime").print_stats(opts.top)
    return 0


def main(argv: List[str]) -> int:
    opts = parse_args(argv)
    if opts.child:
        return child(opts)
    if os.geteuid() != 0:
        raise SystemExit("profile_agent: needs root (network namespaces)")
    return parent(opts)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
