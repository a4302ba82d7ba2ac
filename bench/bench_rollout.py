# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Roll-out cost of site.yml on the lab, in one run: for each lab size, the
first converge and a no-change re-run, with the wall time of every task
(bench/callback/task_timer.py). Reports the two ratios the roll-out is held to:

  re-run / first converge           (target <= 0.40)
  first converge N nodes / 3 nodes  (target <= 2.0 for 10 nodes)

A benchmark, not a test: it measures and prints. Needs root (the lab).

    sudo .venv/bin/python bench/bench_rollout.py [--nodes 3,10] [--forks 10] [--json out.json]
         [--lab-var lab_connection=ssh ...]   (the lab's connection flavour, when the lab role offers one)

Each lab gets a unique name (nnbr<hex><N>) and is removed by lab_down at the
end, also after a failure or Ctrl-C.

The labs' state (each node's private /opt/cni, /etc/cni, ...) goes on a tmpfs
the bench mounts for the run (--state tmpfs, the default; umounted at the
end, also after a failure), as the lab's default /run is on a real node.
`--state disk` keeps it under /run as the lab's default does. On a machine
whose /run is an ext4 without a journal (this VM's), creating a file right
after many were deleted walks every inode freed in the last 60-360 s
(ext4's recently_deleted(), which only nojournal mode runs): the labs the
bench itself just removed made each node's install cost 0.4-0.7 CPU s more,
varying from run to run (bench/README.md, "The harness's own deletions").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


def ansible_env(extra: Dict[str, str]) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra)
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def playbook(args: List[str], env: Dict[str, str], timeout: int = 1800) -> Dict[str, float]:
    """Wall seconds, and CPU seconds of ansible-playbook with everything it
    waited for (its workers, nsenter, the modules in the nodes; not the
    agents, which detach): on a shared machine the CPU figure is the one
    other sessions' load does not inflate."""
    started, cpu = time.monotonic(), children_cpu()
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    took = {"wall": time.monotonic() - started, "cpu": children_cpu() - cpu}
    if proc.returncode != 0:
        raise RuntimeError("ansible-playbook %s failed (rc=%d)\n%s\n%s" % (" ".join(args), proc.returncode, proc.stdout[-4000:], proc.stderr[-2000:]))
    return took


def timed_site(inventory: str, forks: int, extra: List[str], workdir: str, tag: str) -> Dict[str, object]:
    out = os.path.join(workdir, tag + ".json")
    env = ansible_env(
        {
            "ANSIBLE_CALLBACK_PLUGINS": os.path.join(ROOT, "bench", "callback"),
            "ANSIBLE_CALLBACKS_ENABLED": "task_timer",
            "NODENET_TASK_TIMER_JSON": out,
        }
    )
    took = playbook(["-i", inventory, "site.yml", "--forks", str(forks), *extra], env)
    with open(out) as f:
        timings = json.load(f)
    return {"wall": took["wall"], "cpu": took["cpu"], "load": os.getloadavg()[0], "tasks": timings["tasks"]}


def by_task(tasks: List[Dict[str, object]]) -> Dict[str, List[float]]:
    """Per task name: [wall seconds, main process CPU s, workers' CPU s] (a task run in
    several batches or includes adds up)."""
    out: Dict[str, List[float]] = {}
    for t in tasks:
        key = ("%s : %s" % (t["role"], t["name"])) if t["role"] else str(t["name"])
        sums = out.setdefault(key, [0.0, 0.0, 0.0])
        for i, field in enumerate(("seconds", "main_cpu", "workers_cpu")):
            sums[i] += float(t.get(field, 0.0))  # type: ignore[arg-type]
    return out


def bench_size(nodes: int, args: argparse.Namespace, workdir: str, state_root: str) -> Dict[str, object]:
    lab = "nnbr%s%d" % (secrets.token_hex(2), nodes)
    inventory = os.path.join(workdir, lab + ".yml")
    lab_vars = ["-e", "lab_name=" + lab, "-e", "lab_inventory_path=" + inventory]
    if state_root:
        lab_vars += ["-e", "lab_state_dir=%s/%s" % (state_root, lab)]
    for kv in args.lab_var:
        lab_vars += ["-e", kv]
    env = ansible_env({})
    try:
        log("%s: lab_up %d nodes" % (lab, nodes))
        playbook(["playbooks/lab_up.yml", *lab_vars, "-e", "lab_node_count=%d" % nodes], env)
        extra = ["-e", "cni_node_probe=" + args.probe]
        log("%s: site.yml, first converge" % lab)
        first = timed_site(inventory, args.forks, extra, workdir, lab + "-first")
        log("%s: site.yml, no-change re-run" % lab)
        rerun = timed_site(inventory, args.forks, extra, workdir, lab + "-rerun")
    finally:
        log("%s: lab_down" % lab)
        subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/lab_down.yml", *lab_vars],
                       cwd=ROOT, env=env, capture_output=True, timeout=600, check=False)
    return {"nodes": nodes, "lab": lab, "state": args.state, "first": first, "rerun": rerun}


def log(msg: str) -> None:
    print("bench_rollout: " + msg, file=sys.stderr, flush=True)


def report(results: List[Dict[str, object]], forks: int) -> str:
    lines = ["site.yml roll-out on the lab (forks %d, one run, node state on %s; wall seconds, and CPU seconds of the run)"
             % (forks, results[0].get("state", "disk") if results else "disk"), ""]
    lines.append("%-6s %10s %10s %16s %10s %10s %14s %12s" % ("nodes", "first", "re-run", "re-run/first", "first cpu", "re-run cpu", "cpu ratio", "load 1-min"))
    for r in results:
        f, rr = r["first"], r["rerun"]  # type: ignore[index]
        load = "%.1f/%.1f" % (f["load"], rr["load"])
        figures = (r["nodes"], f["wall"], rr["wall"], rr["wall"] / f["wall"], f["cpu"], rr["cpu"], rr["cpu"] / f["cpu"], load)
        lines.append("%-6d %10.1f %10.1f %16.2f %10.1f %10.1f %14.2f %12s   (target <= 0.40)" % figures)
    if len(results) >= 2:
        small, big = results[0], results[-1]
        ratio = big["first"]["wall"] / small["first"]["wall"]  # type: ignore[index]
        cpu_ratio = big["first"]["cpu"] / small["first"]["cpu"]  # type: ignore[index]
        lines.append("")
        lines.append("first converge %d nodes / %d nodes: %.2f wall, %.2f CPU   (target <= 2.0)" % (big["nodes"], small["nodes"], ratio, cpu_ratio))
    for r in results:
        for phase in ("first", "rerun"):
            tasks = by_task(r[phase]["tasks"])  # type: ignore[index]
            lines.append("")
            lines.append("%d nodes, %s: per task (wall s, largest first; CPU s of the controller's main process"
                         " and of its workers with what they ran)" % (r["nodes"], phase))
            lines.append("  %7s  %6s  %7s" % ("wall", "main", "workers"))
            for name, (secs, main, workers) in sorted(tasks.items(), key=lambda kv: -kv[1][0]):
                if secs >= 0.05 or workers >= 0.05:
                    lines.append("  %7.2f  %6.2f  %7.2f  %s" % (secs, main, workers, name))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", default="3,10", help="lab sizes, comma-separated; the first is the base of the scaling ratio")
    ap.add_argument("--forks", type=int, default=0, help="ansible forks (default: the largest lab size)")
    ap.add_argument("--probe", default="changed", choices=["changed", "always", "never"], help="cni_node_probe")
    ap.add_argument("--lab-var", action="append", default=[], help="KEY=VALUE for lab_up/lab_down (e.g. the lab's connection)")
    ap.add_argument("--json", help="write every figure and task timing here")
    ap.add_argument("--state", default="tmpfs", choices=["tmpfs", "disk"],
                    help="where the labs' node state lives: a tmpfs mounted for the run, or the lab's default under /run")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_rollout: needs root (the lab's namespaces)", file=sys.stderr)
        return 1
    sizes = [int(n) for n in args.nodes.split(",")]
    args.forks = args.forks or max(sizes)
    results = []
    with tempfile.TemporaryDirectory(prefix="nnbr-") as workdir:
        state_root = ""
        if args.state == "tmpfs":
            state_root = "/run/nnbr-state-%s" % secrets.token_hex(3)
            os.mkdir(state_root, 0o755)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=4g", "nnbr-state", state_root], check=True, timeout=60)
        try:
            for nodes in sizes:
                results.append(bench_size(nodes, args, workdir, state_root))
        finally:
            if state_root:
                if subprocess.run(["umount", state_root], check=False, timeout=60).returncode != 0:
                    subprocess.run(["umount", "--lazy", state_root], check=False, timeout=60)
                try:
                    os.rmdir(state_root)
                except OSError as e:
                    log("could not remove %s: %s" % (state_root, e))
    print(report(results, args.forks))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"forks": args.forks, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
