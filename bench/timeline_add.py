# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the wall time of one served bridge+host-local ADD goes: a timeline.

    sudo .venv/bin/python bench/timeline_add.py [--pods 60] [--gap-ms 0] [--show 2]

A developer's tool. It installs this checkout's plugins (the bench's way),
runs a `nodenet-agent` in a throwaway host namespace through a wrapper
that time-stamps the agent's steps (accept and greeting, reading the
request, `skel.run`, every netlink request with its type, every setns,
sysctl write, lease-store step and sleep, the answer), rewrites the bridge
shim with `$EPOCHREALTIME` stamps at each of its steps (kept in a variable,
written once at exit), and execs the shim for N pods as a runtime does,
from one process that enters the host namespace for each exec (the
bench's timing). Every stamp is CLOCK_REALTIME, so the three views line
up. Prints, per step, the median start (ms after the exec began) and
median duration over the pods, and the gaps nobody accounts for, then the
full timeline of the last `--show` ADDs.

The stamps cost a little (a few µs each, ~60 per ADD): the absolute
figures are a few percent above an unstamped ADD; the shape is the point.

Safety: as ab_add.py (namespaces by exact name, removed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The agent wrapper: run by the node's interpreter inside the host namespace.
WRAPPER = r'''
import json, os, sys, threading, time
rdir, port, run_dir, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.insert(0, rdir)
from nodenet_cni import skel, invoke
from nodenet_cni.agent import server
from nodenet_cni.net import rtnl, netns, sysctl, addr, route
from nodenet_cni.net import link as links
from nodenet_cni.ipam import store, allocator
from nodenet_cni.plugin import bridge, host_local
from nodenet_cni import fileio
EVENTS = []
now = time.time
cpu = time.thread_time
local = threading.local()
NAMES = {16: "NEWLINK", 17: "DELLINK", 18: "GETLINK", 19: "SETLINK", 20: "NEWADDR", 22: "GETADDR", 24: "NEWROUTE", 26: "GETROUTE"}

def wrap(owner, attr, label=None, key=None):
    fn = getattr(owner, attr)
    name = label or attr
    def timed(*a, **k):
        c0 = cpu()
        t0 = now()
        try:
            return fn(*a, **k)
        finally:
            t1 = now()
            c1 = cpu()
            tag = name if key is None else name + ":" + str(key(a, k))
            EVENTS.append((threading.get_ident(), tag, t0, t1, c1 - c0))
    setattr(owner, attr, timed)

wrap(server.Agent, "_accept", "agent.accept+greet")
wrap(server, "read_request", "agent.read_request")
wrap(server, "_send", "agent.send_answer")
wrap(skel, "run", "skel.run", key=lambda a, k: a[1].get("CNI_COMMAND", "") + ":" + a[1].get("CNI_CONTAINERID", "")[:12])
wrap(rtnl.Rtnl, "request", "netlink", key=lambda a, k: NAMES.get(a[2], a[2]))
wrap(rtnl.Rtnl, "__init__", "netlink.open")
wrap(netns, "_setns", "setns")
wrap(sysctl, "write_sysctl", "sysctl", key=lambda a, k: a[0])
wrap(sysctl, "read_sysctl", "sysctl.read", key=lambda a, k: a[0])
wrap(links, "ensure_bridge", "bridge.ensure_bridge")
wrap(links, "create_veth_pair", "bridge.create_veth_pair")
wrap(links, "wait_oper_up", "bridge.wait_oper_up")
wrap(bridge, "attach_port", "bridge.attach_port")
wrap(bridge, "configure_container_iface", "bridge.configure_container_iface")
wrap(bridge, "setup_gateways", "bridge.setup_gateways")
wrap(bridge, "parse_bridge_conf", "bridge.parse_conf")
wrap(invoke, "delegate", "ipam.delegate")
wrap(invoke, "find_plugin", "invoke.find_plugin")
wrap(store, "flock_bounded", "store.flock")
wrap(store.Store, "__init__", "store.open")
wrap(store.Store, "reserve_first", "store.reserve_first")
wrap(store.Store, "_write_temp", "store.write_temp")
wrap(store.Store, "_write_last_reserved", "store.write_last_reserved")
wrap(store.Store, "_seal", "store.seal")
wrap(store.Store, "_refresh", "store.refresh")
wrap(time, "sleep", "SLEEP", key=lambda a, k: a[0])

def dump():
    with open(out, "w") as f:
        json.dump(EVENTS, f)

import atexit
atexit.register(dump)
raise SystemExit(server.main([], port=port, run_dir=run_dir))
'''

# Stamps added to the shim: after the line that starts with the prefix, a
# stamp appends "label time" to $tl; an EXIT trap writes $tl once.
SHIM_STAMPS = [
    ("{ exec 3<>/dev/tcp/", "shim.connected"),
    ("IFS= read -r -N", "shim.stdin_read"),
    ("[[ -v PATH ]]", "shim.env_built"),
    ("  { IFS= read -r token", "shim.greeting+token_read"),
    ("{ printf '%s\\0' \"$token\"", "shim.request_sent"),
    ("if IFS=' ' read -r -t", "shim.answer_header_read"),
    ("  ((elen == 0))", "shim.answer_read"),
    ("    printf '%s' \"$out\"", "shim.answer_printed"),
]


def stamp_shim(path: str, log: str) -> None:
    with open(path) as f:
        lines = f.read().split("\n")
    out: List[str] = []
    for line in lines:
        out.append(line)
        if line.startswith("shopt -s extglob"):
            trap = "trap 'printf \"%s\\n\" \"$CNI_COMMAND:$CNI_CONTAINERID $tl shim.exit $EPOCHREALTIME\" >>" + log + "' EXIT"
            out.append("tl=\"shim.bash_up $EPOCHREALTIME \"; " + trap)
            continue
        for prefix, label in SHIM_STAMPS:
            if line.startswith(prefix):
                out.append('tl+="%s $EPOCHREALTIME "' % label)
                break
    missing = [label for _p, label in SHIM_STAMPS if label not in "\n".join(out)]
    if missing:
        raise RuntimeError("shim layout changed; no place for %s" % missing)
    with open(path, "w") as f:
        f.write("\n".join(out))


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--pods", type=int, default=60)
    ap.add_argument("--gap-ms", type=float, default=0.0, help="pause between calls")
    ap.add_argument("--show", type=int, default=2)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--json", default="")
    ap.add_argument("--checkout", default="",
                    help="time another checkout's plugins (a tree with collections/ansible_collections/nodenet/cni, as ab_add.py takes)")
    opts = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("timeline_add: needs root (network namespaces)")
    import ab_add
    import cniconf
    from bench_plugins import install_in_sandbox
    from sandbox import Sandbox, interrupt_on_signals, netns_path

    interrupt_on_signals()
    ab_add.HOME_FD = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    sandbox = Sandbox()
    sandbox.prefix = sandbox.prefix.replace("nnbench", "nntline")
    agent = None
    try:
        if opts.checkout:
            bin_dir = sandbox.dir("bin")
            collections = os.path.join(os.path.abspath(opts.checkout), "collections")
            runtime = json.loads(subprocess.run([sys.executable, "-c", ab_add.INSTALL, collections, bin_dir, opts.python], check=True, timeout=120,
                                                capture_output=True, text=True).stdout)
        else:
            bin_dir, runtime = install_in_sandbox(sandbox, opts.python)
        shim_log = os.path.join(sandbox.root, "shim.log")
        agent_log = os.path.join(sandbox.root, "agent.json")
        stamp_shim(os.path.join(bin_dir, "bridge"), shim_log)
        sys.path.insert(0, os.path.dirname(runtime))
        code = "import json,sys; sys.path.insert(0, %r); from nodenet_cni.agent.shim import read_header; print(json.dumps(read_header(%r)))" % (
            runtime, os.path.join(bin_dir, "nodenet-agent"))
        header = json.loads(subprocess.run([opts.python, "-I", "-c", code], capture_output=True, text=True, check=True).stdout)
        host = sandbox.netns("host")
        subprocess.run(["ip", "netns", "exec", host, "ip", "link", "set", "lo", "up"], check=True, timeout=30)
        agent = subprocess.Popen(["ip", "netns", "exec", host, opts.python, "-I", "-c", WRAPPER, runtime, header["port"], header["run_dir"], agent_log],
                                 stdout=subprocess.PIPE)
        if agent.stdout.readline() != b"ready\n":  # type: ignore[union-attr]
            raise RuntimeError("the wrapped agent did not start")
        v = ab_add.Variant("py", bin_dir, host, sandbox.dir("data"), agent=True)
        v.fd = os.open(netns_path(host), os.O_RDONLY | os.O_CLOEXEC)
        v.pods = [netns_path(p) for p in sandbox.netns_many("c", opts.pods + 1)]
        v.ids = [cniconf.new_container_id() for _p in v.pods]
        ab_add.call(v, "ADD", opts.pods)  # warm-up (bridge creation)
        ab_add.call(v, "DEL", opts.pods)
        spans: Dict[str, Tuple[float, float]] = {}
        load0 = os.getloadavg()[0]
        for i in range(opts.pods):
            t0 = time.time()
            r = ab_add.call(v, "ADD", i)
            spans[v.ids[i][:12]] = (t0, t0 + r["wall"] / 1000.0)
            if opts.gap_ms:
                time.sleep(opts.gap_ms / 1000.0)
        load1 = os.getloadavg()[0]
        for i in range(opts.pods):
            ab_add.call(v, "DEL", i)
        agent.terminate()
        agent.wait(timeout=60)
        agent = None
        with open(agent_log) as f:
            events = json.load(f)
        shim: Dict[str, List[Tuple[str, float]]] = {}
        with open(shim_log) as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                command, _sep, cid = parts[0].partition(":")
                if command != "ADD":
                    continue
                shim[cid[:12]] = [(parts[k], float(parts[k + 1])) for k in range(1, len(parts) - 1, 2)]
        calls = assemble(spans, shim, events)
        print("load %.1f -> %.1f; %d ADDs" % (load0, load1, len(calls)))
        summarize(calls)
        for key in list(calls)[-opts.show:]:
            print("\n-- ADD %s (wall %.2f ms)" % (key, calls[key]["wall"]))
            for label, start, dur, tid, cpu in calls[key]["rows"]:
                print("  %7.3f  %7.3f  %7.3f  %-8s %s" % (start, dur, cpu, tid, label))
        if opts.json:
            with open(opts.json, "w") as f:
                json.dump(calls, f)
        return 0
    finally:
        if agent is not None:
            agent.kill()
            agent.wait(timeout=30)
        sandbox.close()


def assemble(spans: Dict[str, Tuple[float, float]], shim: Dict[str, List[Tuple[str, float]]], events: List[Any]) -> Dict[str, Dict[str, Any]]:
    """Per ADD: rows (label, start ms after the exec began, duration ms, thread)."""
    calls: Dict[str, Dict[str, Any]] = {}
    runs = [e for e in events if e[1].startswith("skel.run:ADD:")]
    for key, (t0, t1) in spans.items():
        run = min((e for e in runs if e[1].endswith(":" + key)), key=lambda e: e[2], default=None)  # the outer one (bridge's)
        if run is None or key not in shim:
            continue
        tid = run[0]
        # the agent events of this call: the worker thread's, from its accept to its answer
        mine = [e for e in events if e[0] == tid and e[3] >= t0 and e[2] <= t1]
        accept = max((e for e in mine if e[1] == "agent.accept+greet" and e[3] <= run[2]), key=lambda e: e[3], default=None)
        lo = accept[3] - 0.0001 if accept else run[2]
        rows = [("exec begins", 0.0, 0.0, "harness", 0.0)]
        for label, t in shim[key]:
            rows.append((label, (t - t0) * 1000, 0.0, "shim", 0.0))
        for e in mine:
            if e[1] == "agent.accept+greet":
                if accept is not None and e is accept:
                    rows.append(("agent.greeting_sent", (e[3] - t0) * 1000, 0.0, "agent", 0.0))
                continue
            if e[2] >= lo - 0.0002 and e[3] <= t1:
                rows.append((e[1], (e[2] - t0) * 1000, (e[3] - e[2]) * 1000, "agent", e[4] * 1000))
        rows.append(("wait4 returns", (t1 - t0) * 1000, 0.0, "harness", 0.0))
        rows.sort(key=lambda r: r[1])
        calls[key] = {"wall": (t1 - t0) * 1000, "rows": rows}
    return calls


def summarize(calls: Dict[str, Dict[str, Any]]) -> None:
    """Median start and duration of every step, and the sequence of the main milestones."""
    by_label: Dict[str, List[Tuple[float, float, float]]] = {}
    for call in calls.values():
        seen: Dict[str, int] = {}
        for label, start, dur, _tid, cpu in call["rows"]:
            n = seen.get(label, 0)
            seen[label] = n + 1
            by_label.setdefault("%s#%d" % (label, n) if n else label, []).append((start, dur, cpu))
    walls = [c["wall"] for c in calls.values()]
    print("wall median %.2f ms (q1 %.2f, q3 %.2f)" % (statistics.median(walls), sorted(walls)[len(walls) // 4], sorted(walls)[3 * len(walls) // 4]))
    print("%-60s %9s %9s %9s %5s" % ("step (in order of median start)", "start ms", "dur ms", "cpu ms", "n"))
    rows = sorted((statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), statistics.median(x[2] for x in v), len(v), k)
                  for k, v in by_label.items())
    for start, dur, cpu, n, label in rows:
        if n >= len(calls) // 2:
            print("%-60s %9.3f %9.3f %9.3f %5d" % (label, start, dur, cpu, n))
    totals: Dict[str, List[float]] = {}
    for call in calls.values():
        acc: Dict[str, float] = {}
        for label, _start, dur, _tid, _cpu in call["rows"]:
            base = label.split(":")[0]
            acc[base] = acc.get(base, 0.0) + dur
        for base, dur in acc.items():
            totals.setdefault(base, []).append(dur)
    print("\ntotal time per kind (median over ADDs, nested kinds overlap):")
    for base, durs in sorted(totals.items(), key=lambda kv: -statistics.median(kv[1])):
        if statistics.median(durs) > 0.005:
            print("  %-40s %7.3f ms" % (base, statistics.median(durs)))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
