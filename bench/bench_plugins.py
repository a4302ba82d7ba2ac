# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: our Python CNI plugins against the Go reference plugins.

A benchmark, not a test: it measures and prints, it never asserts timing.
Both implementations run in the same run, on the same netconf (only the
dataDir path differs), each in its own benchmark "host" namespace, with
sequential ops interleaved (rounds of ten, Go then Python) so machine
noise hits both alike. See bench/README.md for what each figure means.

    sudo .venv/bin/python bench/bench_plugins.py [--pods 50] [--leases 10000,60000] [--parallel 32,64] [--cri 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cniconf  # noqa: E402
import report  # noqa: E402
from report import Figures, median, p95  # noqa: E402
from sandbox import Sandbox, interrupt_on_signals, netns_path, stop_process  # noqa: E402

ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "worker.py")
GO_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins
NODE_PYTHON = "/usr/bin/python3"  # the node's interpreter runs our plugins, as in production
PLUGINS = ("bridge", "host-local", "loopback")
OP_TIMEOUT = 60.0  # seconds per plugin exec before the worker kills it
ROUND = 10  # sequential ops per worker run; Go and Python alternate round by round
PROFILE_SAMPLES = 20  # rounds of the Python time breakdown


@dataclass
class Impl:
    key: str  # "go" | "py"
    label: str
    bin_dir: str
    usable: Dict[str, bool] = field(default_factory=dict)
    runtime_dir: str = ""  # ours: where the launchers find nodenet_cni

    def has(self, *plugins: str) -> bool:
        return all(self.usable.get(p) for p in plugins)

    def plugin(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)


@dataclass
class Pod:
    container_id: str
    netns: str  # CNI_NETNS path


@dataclass
class OpResult:
    rc: int
    wall_ms: float
    cpu_ms: float
    maxrss_kb: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def error(self) -> str:
        try:
            msg = json.loads(self.stdout).get("msg", "")
        except (ValueError, AttributeError):
            msg = ""
        last_err = (self.stderr.strip().splitlines() or [""])[-1][:300]
        return "rc=%d %s%s" % (self.rc, msg or self.stdout.strip()[:300], " (stderr: %s)" % last_err if last_err else "")


@dataclass
class JobResult:
    wall_s: float
    ops: List[OpResult]

    def ok_ops(self) -> List[OpResult]:
        return [o for o in self.ops if o.ok]

    def walls(self) -> List[float]:
        return [o.wall_ms for o in self.ok_ops()]

    def failures(self) -> int:
        return sum(1 for o in self.ops if not o.ok)


def load_installer():
    """The collection's installer, imported as the collection (it imports the cni package relatively).

    `make setup` (and the test suite) make collections/ansible_collections/nodenet/cni
    a symlink to this checkout.
    """
    collections = os.path.join(ROOT, "collections")
    if not os.path.isdir(os.path.join(collections, "ansible_collections", "nodenet", "cni")):
        raise SystemExit("bench: %s/ansible_collections/nodenet/cni is missing; run `make setup` first" % collections)
    if collections not in sys.path:
        sys.path.insert(0, collections)
    return importlib.import_module("ansible_collections.nodenet.cni.plugins.module_utils.cni.node.installer")


def install_in_sandbox(sandbox, python: str, plugins=("bridge", "host-local", "loopback")):
    """This checkout's plugins (shims and agent) installed in the sandbox's bin dir
    for `python`: (bin_dir, runtime dir). The profiling tools' setup."""
    installer = load_installer()
    bin_dir = sandbox.dir("bin")
    names = installer.plugin_names(list(plugins), installer.DEFAULT_PREFIX, reference_names=True, agent=True)
    digest = installer.install_local(bin_dir, names, python)
    return bin_dir, installer.runtime_dir_for(installer.default_lib_dir(bin_dir), digest)


def declare_figures(opts: argparse.Namespace) -> Figures:
    f = Figures()
    f.declare("version_ms", "VERSION exec, median (process start floor)", "ms")
    f.declare("add_median_ms", "bridge+host-local ADD, median of %d pods" % opts.pods, "ms")
    f.declare("add_p95_ms", "bridge+host-local ADD, p95", "ms")
    f.declare("del_median_ms", "bridge+host-local DEL, median", "ms")
    f.declare("del_p95_ms", "bridge+host-local DEL, p95", "ms")
    f.declare("add_cpu_ms", "bridge+host-local ADD CPU user+sys, median", "ms")
    f.declare("hl_add_median_ms", "host-local ADD, median of %d" % opts.pods, "ms")
    f.declare("hl_add_p95_ms", "host-local ADD, p95", "ms")
    f.declare("hl_del_median_ms", "host-local DEL, median", "ms")
    f.declare("hl_del_p95_ms", "host-local DEL, p95", "ms")
    for n in opts.parallel:
        par = "%d parallel ADDs (%d workers)" % (n, opts.workers or n)
        f.declare("par%d_add_wall_s" % n, par + ", wall", "s")
        f.declare("par%d_add_dups" % n, par + ", duplicate IPs", "count", is_count=True)
        f.declare("par%d_add_failures" % n, par + ", failures", "count", is_count=True)
        f.declare("par%d_del_wall_s" % n, "%d parallel DELs, wall" % n, "s")
        f.declare("par%d_leases_left" % n, "leases left after the %d parallel DELs" % n, "count", is_count=True)
    for n in opts.leases:
        big = "with %d leases" % n
        f.declare("big%d_hl_add_ms" % n, "host-local ADD %s, median of %d" % (big, opts.lease_ops), "ms")
        f.declare("big%d_hl_del_ms" % n, "host-local DEL %s, median" % big, "ms")
        f.declare("big%d_add_ms" % n, "bridge+host-local ADD %s, median" % big, "ms")
        f.declare("big%d_del_ms" % n, "bridge+host-local DEL %s, median" % big, "ms")
    if opts.mode == "agent" and opts.fallback_pods:
        fb = "in-process fallback (no agent reachable)"
        f.declare("fb_add_median_ms", "bridge+host-local ADD, %s, median of %d" % (fb, opts.fallback_pods), "ms")
        f.declare("fb_add_p95_ms", "bridge+host-local ADD, %s, p95" % fb, "ms")
        f.declare("fb_del_median_ms", "bridge+host-local DEL, %s, median" % fb, "ms")
        f.declare("fb_del_p95_ms", "bridge+host-local DEL, %s, p95" % fb, "ms")
    f.declare("rss_add_mb", "peak RSS of a bridge ADD, median", "MB")
    f.declare("rss_hl_add_mb", "peak RSS of a host-local ADD, median", "MB")
    f.declare("failed_execs", "failed plugin execs, all phases", "count", is_count=True)
    if opts.mode == "agent":
        f.declare("agent_rss_mb", "nodenet-agent peak RSS over the whole run (Go: no agent)", "MB", py_only=True)
    return f


@dataclass
class Lane:
    """One implementation's share of a phase: its netconf (own dataDir) and pods."""

    impl: Impl
    data_dir: str
    conf: Dict[str, Any]
    pods: List[Pod]


class Bench:
    def __init__(self, opts: argparse.Namespace, sandbox: Sandbox, impls: List[Impl]) -> None:
        self.opts = opts
        self.sandbox = sandbox
        self.impls = impls
        self.figures = declare_figures(opts)
        self.hosts: Dict[str, str] = {}
        self.errors: List[str] = []
        self.failed: Dict[str, int] = {impl.key: 0 for impl in impls}
        self.profile: Dict[str, Any] = {}
        self.agent: Optional[subprocess.Popen] = None
        self.fb: Optional[Impl] = None  # agent mode: our shims in a namespace without an agent

    # -- plumbing ---------------------------------------------------------

    def log(self, msg: str) -> None:
        if not self.opts.quiet:
            print("[bench %5.1fs] %s" % (time.monotonic() - self.opts.started, msg), file=sys.stderr, flush=True)

    def capable(self, *plugins: str) -> List[Impl]:
        return [impl for impl in self.impls if impl.has(*plugins)]

    def host(self, impl: Impl) -> str:
        """impl's benchmark host namespace: its plugins run here, its bridge lives here."""
        if impl.key not in self.hosts:
            self.hosts[impl.key] = self.sandbox.netns(impl.key + "-host")
            # a node's namespace has loopback up; the shims reach the agent over it
            subprocess.run(["ip", "netns", "exec", self.hosts[impl.key], "ip", "link", "set", "lo", "up"], check=True, timeout=30)
            if impl.key == "py" and self.opts.mode == "agent":
                self.start_agent(impl, self.hosts[impl.key])
        return self.hosts[impl.key]

    def start_agent(self, impl: Impl, netns: str) -> None:
        """Our plugins' shims hand their calls to a nodenet-agent in their host namespace (a node's setup)."""
        self.agent = subprocess.Popen(["ip", "netns", "exec", netns, impl.plugin("nodenet-agent")], stdout=subprocess.PIPE)
        line = self.agent.stdout.readline() if self.agent.stdout else b""
        if line != b"ready\n":
            raise RuntimeError("nodenet-agent did not start in %s: %r" % (netns, line))
        self.log("nodenet-agent serving in %s (pid %d)" % (netns, self.agent.pid))

    def stop_agent(self) -> None:
        if self.agent is None:
            return
        try:
            with open("/proc/%d/status" % self.agent.pid) as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            self.figures.set("agent_rss_mb", "py", int(status["VmHWM"].split()[0]) / 1024.0)
        except (OSError, KeyError, ValueError):
            pass
        stop_process(self.agent, timeout=120)
        self.agent = None

    def pods(self, impl: Impl, tag: str, count: int) -> List[Pod]:
        """Fresh container namespaces (made before timing starts)."""
        return [Pod(cniconf.new_container_id(), netns_path(n)) for n in self.sandbox.netns_many(impl.key + tag, count)]

    def ipam_only_pods(self, impl: Impl, count: int) -> List[Pod]:
        """Pods for host-local alone: it never enters CNI_NETNS, but a runtime
        passes a container's, never the plugin's own (ours rejects that)."""
        key = impl.key + "-ipam"
        if key not in self.hosts:
            self.hosts[key] = self.sandbox.netns(impl.key + "-ipamctr")
        return [Pod(cniconf.new_container_id(), netns_path(self.hosts[key])) for _pod in range(count)]

    def drop_pods(self, lanes: Dict[str, Lane]) -> None:
        for lane in lanes.values():
            self.sandbox.delete_netns(sorted({os.path.basename(p.netns) for p in lane.pods} - set(self.hosts.values())))

    def lanes(self, impls: List[Impl], tag: str, make_pods, data_dir: Optional[str] = None) -> Dict[str, Lane]:
        """A lane per implementation; `data_dir` (a pre-filled template) is copied, else a fresh one."""
        lanes = {}
        for impl in impls:
            path = os.path.join(self.sandbox.root, "%s-%s" % (impl.key, tag))
            if data_dir:
                shutil.copytree(data_dir, path)
            else:
                os.makedirs(path)
            lanes[impl.key] = Lane(impl, path, cniconf.netconf(path), make_pods(impl))
        if data_dir:
            os.sync()  # the copies' writeback must not land inside the timed ops
        return lanes

    def op(self, impl: Impl, plugin: str, command: str, pod: Pod, conf: Dict[str, Any], argv: Optional[List[str]] = None) -> Dict[str, Any]:
        return {
            "argv": argv or [impl.plugin(plugin)],
            "env": cniconf.runtime_env(command, pod.container_id, pod.netns, impl.bin_dir),
            "stdin": json.dumps(conf),
        }

    def run_job(self, impl: Impl, phase: str, ops: List[Dict[str, Any]], parallel: int = 0) -> JobResult:
        """Run ops through the worker inside impl's host namespace."""
        if not ops:
            return JobResult(0.0, [])
        job_file = os.path.join(self.sandbox.root, "job.json")
        with open(job_file, "w") as f:
            json.dump({"timeout": OP_TIMEOUT, "parallel": parallel, "ops": ops}, f)
        rounds = len(ops) if not parallel else -(-len(ops) // parallel)
        argv = ["ip", "netns", "exec", self.host(impl), sys.executable, "-I", WORKER, job_file]
        proc = subprocess.run(argv, capture_output=True, timeout=rounds * (OP_TIMEOUT + 5) + 60, check=False)
        if proc.returncode != 0:
            raise RuntimeError("worker failed in %s (rc=%d): %s" % (phase, proc.returncode, proc.stderr.decode(errors="replace")[-2000:]))
        raw = json.loads(proc.stdout)
        result = JobResult(raw["wall_s"], [OpResult(**o) for o in raw["ops"]])
        failed = [o for o in result.ops if not o.ok]
        if failed:
            self.failed[impl.key] += len(failed)
            self.errors.append("%s %s: %d/%d failed, first: %s" % (impl.key, phase, len(failed), len(result.ops), failed[0].error()))
            self.log("WARNING " + self.errors[-1])
        return result

    def run_interleaved(self, phase: str, ops: Dict[str, Tuple[Impl, List[Dict[str, Any]]]]) -> Dict[str, JobResult]:
        """Sequential ops in rounds of ROUND, alternating Go and Python round
        by round, so a burst of load elsewhere on the machine hits both."""
        results = {key: JobResult(0.0, []) for key in ops}
        longest = max((len(o) for _impl, o in ops.values()), default=0)
        for start in range(0, longest, ROUND):
            for key, (impl, impl_ops) in ops.items():
                part = self.run_job(impl, phase, impl_ops[start : start + ROUND])
                results[key].wall_s += part.wall_s
                results[key].ops.extend(part.ops)
        return results

    def run_burst(self, phase: str, ops: Dict[str, Tuple[Impl, List[Dict[str, Any]]]], workers: int) -> Dict[str, JobResult]:
        """All ops at once on a pool of `workers` threads, one implementation after the other."""
        return {key: self.run_job(impl, phase, impl_ops, workers) for key, (impl, impl_ops) in ops.items()}

    def add_then_del(self, phase: str, lanes: Dict[str, Lane], plugin: str, workers: int = 0) -> Tuple[Dict[str, JobResult], Dict[str, JobResult]]:
        """ADD every pod, then DEL every pod with its ADD result as prevResult (as libcni does)."""

        def run(name: str, ops: Dict[str, Tuple[Impl, List[Dict[str, Any]]]]) -> Dict[str, JobResult]:
            return self.run_burst(name, ops, workers) if workers else self.run_interleaved(name, ops)

        adds = run(phase + " ADD", {k: (lane.impl, [self.op(lane.impl, plugin, "ADD", p, lane.conf) for p in lane.pods]) for k, lane in lanes.items()})
        dels = run(
            phase + " DEL",
            {
                k: (
                    lane.impl,
                    [
                        self.op(lane.impl, plugin, "DEL", p, cniconf.with_prev_result(lane.conf, a.stdout if a.ok else None))
                        for p, a in zip(lane.pods, adds[k].ops)
                    ],
                )
                for k, lane in lanes.items()
            },
        )
        return adds, dels

    def set_latency(self, prefix: str, key: str, job: JobResult, p95_too: bool = True) -> None:
        walls = job.walls()
        self.figures.set(prefix + ("_median_ms" if p95_too else "_ms"), key, median(walls), len(walls))
        if p95_too:
            self.figures.set(prefix + "_p95_ms", key, p95(walls), len(walls))

    # -- figures ----------------------------------------------------------

    def measure_version_floor(self) -> None:
        """The fixed cost of any exec: start the process, answer VERSION."""
        self.log("VERSION floor: %d execs each" % self.opts.pods)
        nothing = Pod("version", "")
        ops = {i.key: (i, [self.op(i, "bridge", "VERSION", nothing, {"cniVersion": cniconf.CNI_VERSION})] * self.opts.pods) for i in self.capable("bridge")}
        for key, job in self.run_interleaved("VERSION", ops).items():
            self.figures.set("version_ms", key, median(job.walls()), len(job.walls()))

    def measure_pod_latency(self) -> None:
        """Figure 1 (with CPU and peak RSS): ADD then DEL of N pods, one at a time."""
        impls = self.capable("bridge", "host-local")
        self.log("pod latency: warm-up (creates the bridge, warms the page cache; not counted)")
        warm = self.lanes(impls, "warm", lambda impl: self.pods(impl, "w", 1))
        self.add_then_del("warm-up", warm, "bridge")
        self.drop_pods(warm)
        self.log("pod latency: %d ADDs then %d DELs each" % (self.opts.pods, self.opts.pods))
        lanes = self.lanes(impls, "latency", lambda impl: self.pods(impl, "l", self.opts.pods))
        adds, dels = self.add_then_del("pod", lanes, "bridge")
        for key in lanes:
            self.set_latency("add", key, adds[key])
            self.set_latency("del", key, dels[key])
            ok = adds[key].ok_ops()
            self.figures.set("add_cpu_ms", key, median([o.cpu_ms for o in ok]), len(ok))
            self.figures.set("rss_add_mb", key, _mb(median([o.maxrss_kb for o in ok])), len(ok))
        self.drop_pods(lanes)

    def measure_host_local(self) -> None:
        """Figure 2: host-local alone, exec'd directly."""
        impls = self.capable("host-local")
        self.log("host-local alone: %d ADDs then %d DELs each" % (self.opts.pods, self.opts.pods))
        self.add_then_del("host-local warm-up", self.lanes(impls, "hl-warm", lambda impl: self.ipam_only_pods(impl, 1)), "host-local")
        lanes = self.lanes(impls, "hostlocal", lambda impl: self.ipam_only_pods(impl, self.opts.pods))
        adds, dels = self.add_then_del("host-local", lanes, "host-local")
        for key in lanes:
            self.set_latency("hl_add", key, adds[key])
            self.set_latency("hl_del", key, dels[key])
            ok = adds[key].ok_ops()
            self.figures.set("rss_hl_add_mb", key, _mb(median([o.maxrss_kb for o in ok])), len(ok))

    def measure_parallel(self) -> None:
        """Figure 3: a burst of ADDs into pre-made namespaces, then a burst of DELs, per burst size."""
        impls = self.capable("bridge", "host-local")
        # steady state: the bridge exists already (pod latency phase, or this warm-up)
        warm = self.lanes(impls, "par-warm", lambda impl: self.pods(impl, "pw", 1))
        self.add_then_del("parallel warm-up", warm, "bridge")
        self.drop_pods(warm)
        for n in self.opts.parallel:
            workers = self.opts.workers or n
            self.log("parallel: %d ADDs on %d workers, then %d DELs, each" % (n, workers, n))
            lanes = self.lanes(impls, "parallel%d" % n, lambda impl: self.pods(impl, "p%d-" % n, n))
            adds, dels = self.add_then_del("%d parallel" % n, lanes, "bridge", workers=workers)
            for key, lane in lanes.items():
                add, dele = adds[key], dels[key]
                addresses = [a for o in add.ok_ops() for a in cniconf.result_addresses(o.stdout)]
                self.figures.set("par%d_add_wall_s" % n, key, add.wall_s if not add.failures() else None)
                self.figures.set("par%d_add_dups" % n, key, len(addresses) - len(set(addresses)))
                self.figures.set("par%d_add_failures" % n, key, add.failures())
                self.figures.set("par%d_del_wall_s" % n, key, dele.wall_s if not dele.failures() else None)
                self.figures.set("par%d_leases_left" % n, key, cniconf.count_leases(lane.data_dir))
            self.drop_pods(lanes)

    def measure_many_leases(self) -> None:
        """Figure 4: ADD/DEL on identical copies of a dataDir already holding N leases, per N."""
        for n in self.opts.leases:
            template = self.sandbox.dir("leases-template-%d" % n)
            self.log("many leases: writing %d Go-format leases" % n)
            cniconf.prefill_leases(template, n)
            for plugin, prefix in (("host-local", "big%d_hl" % n), ("bridge", "big%d" % n)):
                impls = self.capable("bridge", "host-local") if plugin == "bridge" else self.capable("host-local")
                self.log("many leases (%d): %s, %d ADDs then %d DELs each" % (n, plugin, self.opts.lease_ops, self.opts.lease_ops))
                tag = "leases%d-%s" % (n, "bridge" if plugin == "bridge" else "hl")
                if plugin == "bridge":
                    lanes = self.lanes(impls, tag, lambda impl: self.pods(impl, "b%d-" % n, self.opts.lease_ops), data_dir=template)
                else:
                    lanes = self.lanes(impls, tag, lambda impl: self.ipam_only_pods(impl, self.opts.lease_ops), data_dir=template)
                adds, dels = self.add_then_del("%s, %d leases" % (plugin, n), lanes, plugin)
                for key, lane in lanes.items():
                    self.set_latency(prefix + "_add", key, adds[key], p95_too=False)
                    self.set_latency(prefix + "_del", key, dels[key], p95_too=False)
                    left = cniconf.count_leases(lane.data_dir)
                    if left != n:
                        self.errors.append("%s %d leases, %s: %d lease files after DEL, expected %d" % (key, n, plugin, left, n))
                    shutil.rmtree(lane.data_dir, ignore_errors=True)
                self.drop_pods(lanes)
            shutil.rmtree(template, ignore_errors=True)

    def measure_fallback(self) -> None:
        """Agent mode: the same pod ADD/DEL through the shims of a namespace with no agent (the fallback)."""
        if self.opts.mode != "agent" or not self.opts.fallback_pods:
            return
        impls = self.capable("bridge", "host-local")
        go = [impl for impl in impls if impl.key == "go"]
        fb = self.fallback_impl()
        if fb is None or not fb.has("bridge", "host-local"):
            return
        lanes_impls = go + [fb]
        self.log("fallback: %d ADDs then %d DELs each, ours in a namespace without an agent" % (self.opts.fallback_pods, self.opts.fallback_pods))
        warm = self.lanes(lanes_impls, "fb-warm", lambda impl: self.pods(impl, "fw", 1))
        self.add_then_del("fallback warm-up", warm, "bridge")
        self.drop_pods(warm)
        lanes = self.lanes(lanes_impls, "fallback", lambda impl: self.pods(impl, "f", self.opts.fallback_pods))
        adds, dels = self.add_then_del("fallback", lanes, "bridge")
        for key in lanes:
            column = "py" if key == "fb" else key
            for what, job in (("add", adds[key]), ("del", dels[key])):
                walls = job.walls()
                self.figures.set("fb_%s_median_ms" % what, column, median(walls), len(walls))
                self.figures.set("fb_%s_p95_ms" % what, column, p95(walls), len(walls))
        self.drop_pods(lanes)

    def fallback_impl(self) -> Optional[Impl]:
        """Our plugins as they run with no agent: in agent mode, the same bin dir exec'd in a host namespace without one."""
        py = next((impl for impl in self.impls if impl.key == "py"), None)
        if py is None or self.opts.mode == "fallback":
            return py
        if self.fb is None:
            self.fb = Impl("fb", "Python (nodenet.cni), no agent", py.bin_dir, dict(py.usable), py.runtime_dir)
            self.failed["fb"] = 0
        return self.fb

    def profile_python(self) -> None:
        """Where a Python ADD spends its time: interpreter start, imports, the rest.

        The parts are measured in one job, one of each kind in turn, so they
        share the machine's conditions and can be subtracted from each other.
        """
        py = self.fallback_impl()  # the in-process path, also in agent mode
        if py is None or not py.has("bridge", "host-local"):
            return
        self.log("profile: -X importtime of one bridge and one host-local ADD (in-process, no agent)")
        conf = cniconf.netconf(self.sandbox.dir("py-profile"))
        importtime: Dict[str, Any] = {}
        modules: Dict[str, List[str]] = {}
        for plugin in ("bridge", "host-local"):
            target = self.pods(py, "i", 1)[0] if plugin == "bridge" else self.ipam_only_pods(py, 1)[0]
            # the shim's in-process command line (what runs without an agent), under -X importtime
            code = "import sys; sys.path.insert(0, %r); from nodenet_cni.agent.fallback import main; raise SystemExit(main(%r))" % (py.runtime_dir, plugin)
            add = self.op(py, plugin, "ADD", target, conf, argv=[NODE_PYTHON, "-I", "-S", "-X", "importtime", "-c", code])
            add["keep_stderr"] = True
            res = self.run_job(py, plugin + " ADD -X importtime", [add])
            if not (res.ops and res.ops[0].ok):
                return
            entries = report.parse_importtime(res.ops[0].stderr)
            importtime[plugin] = report.importtime_summary(entries)
            modules[plugin] = [e.module for e in entries if e.depth == 0]
            self.run_job(py, plugin + " DEL after importtime", [self.op(py, plugin, "DEL", target, cniconf.with_prev_result(conf, res.ops[0].stdout))])

        count = min(self.opts.pods, PROFILE_SAMPLES)
        self.log("profile: %d rounds of bare start, import-only execs, host-local ADD, bridge ADD" % count)
        nothing = Pod("profile", "")

        def python(code: str) -> Dict[str, Any]:
            return self.op(py, "", "VERSION", nothing, {}, argv=[NODE_PYTHON, "-I", "-S", "-c", code])

        def import_only(plugin: str) -> Dict[str, Any]:
            # the modules an ADD imports, in its order, and no work: their real
            # cost without -X importtime's own overhead
            # (with the fallback's stand-ins in place and no cyclic GC, as its main has it)
            return python("import gc, sys; gc.disable(); sys.path.insert(0, %r)\nfrom nodenet_cni.agent.fallback import lazy_imports\nlazy_imports()\n"
                          "for m in %r: __import__(m)" % (py.runtime_dir, modules[plugin]))

        kinds = ("startup", "bridge imports", "host-local imports", "host-local ADD", "bridge ADD")
        pods = self.pods(py, "r", count)
        ipam_pods = self.ipam_only_pods(py, count)
        ops: List[Dict[str, Any]] = []
        for pod, ipam_pod in zip(pods, ipam_pods):
            ops += [
                python("pass"),
                import_only("bridge"),
                import_only("host-local"),
                self.op(py, "host-local", "ADD", ipam_pod, conf),
                self.op(py, "bridge", "ADD", pod, conf),
            ]
        job = self.run_job(py, "profile", ops)
        by_kind = {kind: [o for n, o in enumerate(job.ops) if n % len(kinds) == i] for i, kind in enumerate(kinds)}
        dels = [
            self.op(py, plugin, "DEL", pod, cniconf.with_prev_result(conf, add.stdout if add.ok else None))
            for plugin, kind, pod_list in (("host-local", "host-local ADD", ipam_pods), ("bridge", "bridge ADD", pods))
            for pod, add in zip(pod_list, by_kind[kind])
        ]
        self.run_job(py, "profile DEL", dels)
        self.profile = {
            "samples": count,
            "median_ms": {kind: median([o.wall_ms for o in by_kind[kind] if o.ok]) for kind in kinds},
            "importtime": importtime,
        }

    def run(self) -> None:
        self.measure_version_floor()
        self.measure_pod_latency()
        self.measure_host_local()
        self.measure_parallel()
        self.measure_many_leases()
        self.measure_fallback()
        self.profile_python()
        self.stop_agent()
        self.failed["py"] = self.failed.get("py", 0) + self.failed.pop("fb", 0)
        for impl in self.impls:
            if any(impl.usable.values()):
                self.figures.set("failed_execs", impl.key, self.failed[impl.key])


def _mb(kb: Optional[float]) -> Optional[float]:
    return None if kb is None else kb / 1024.0


# -- setup ------------------------------------------------------------------


def probe(impl: Impl) -> None:
    """A plugin is usable if it answers VERSION with 1.0.0 among its versions."""
    for plugin in PLUGINS:
        path = impl.plugin(plugin)
        ok = False
        if os.access(path, os.X_OK):
            env = cniconf.runtime_env("VERSION", "probe", "", impl.bin_dir)
            proc = subprocess.run([path], input=b'{"cniVersion": "1.0.0"}', env=env, capture_output=True, timeout=OP_TIMEOUT, check=False)
            try:
                ok = proc.returncode == 0 and cniconf.CNI_VERSION in json.loads(proc.stdout).get("supportedVersions", [])
            except ValueError:
                ok = False
        impl.usable[plugin] = ok


def install_python_plugins(sandbox: Sandbox, interpreter: str) -> Impl:
    installer = load_installer()
    bin_dir = sandbox.dir("pybin")
    names = installer.plugin_names(list(PLUGINS), installer.DEFAULT_PREFIX, reference_names=True, agent=True)
    digest = installer.install_local(bin_dir, names, interpreter)
    return Impl("py", "Python (nodenet.cni)", bin_dir, runtime_dir=installer.runtime_dir_for(installer.default_lib_dir(bin_dir), digest))


def machine_info(go_bin: str, interpreter: str) -> Dict[str, Any]:
    def output(argv: List[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, timeout=30, check=False).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "plugin_python": output([interpreter, "-c", "import sys; print(sys.version.split()[0])"]),
        "go_plugins": output(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"]) or go_bin,
        "load_avg_before": os.getloadavg(),
    }


def _sizes(text: str) -> List[int]:
    """ "10000,60000" -> [10000, 60000]"""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text) from None
    if not sizes:
        raise argparse.ArgumentTypeError("expected at least one size")
    return sizes


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--pods", type=int, default=None, help="pods for ADD/DEL latency (default 50; --quick 10)")
    ap.add_argument("--leases", type=_sizes, default=None, help="existing leases in the dataDir, comma-separated sizes (default 10000,60000; --quick 1000)")
    ap.add_argument("--lease-ops", type=int, default=None, help="ADDs/DELs measured with the leases present (default 20; --quick 5)")
    ap.add_argument("--parallel", type=_sizes, default=None, help="parallel ADDs, comma-separated burst sizes (default 32,64; --quick 16)")
    ap.add_argument("--workers", type=int, default=None, help="thread pool size for them (default: as many as ADDs)")
    ap.add_argument("--fallback-pods", type=int, default=None,
                    help="agent mode: pods timed through the shims with no agent reachable (default: --pods; 0 skips)")
    ap.add_argument("--cri", type=int, default=0, metavar="PODS",
                    help="also time PODS pods through containerd's CRI, Go node against ours (bench_cri.py; default 0: skip)")
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, well under a minute")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    ap.add_argument("--go-bin", default=GO_BIN, help="the Go reference plugins (default %(default)s)")
    ap.add_argument("--python", default=NODE_PYTHON, help="interpreter for our plugins (default %(default)s)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--mode", choices=("agent", "fallback"), default="agent",
                    help="agent: our shims served by a nodenet-agent in their namespace (a node's setup); fallback: no agent, in-process")
    opts = ap.parse_args(argv)
    small = opts.quick
    opts.pods = opts.pods or (10 if small else 50)
    opts.leases = opts.leases if opts.leases is not None else ([1000] if small else [10000, 60000])
    opts.lease_ops = opts.lease_ops or (5 if small else 20)
    opts.parallel = opts.parallel or ([16] if small else [32, 64])
    opts.fallback_pods = opts.pods if opts.fallback_pods is None else opts.fallback_pods
    for name in ("pods", "lease_ops", "workers"):
        value = getattr(opts, name)
        if value is not None and not 1 <= value <= 1000:
            ap.error("--%s must be between 1 and 1000" % name.replace("_", "-"))
    if not 0 <= opts.fallback_pods <= 1000 or not 0 <= opts.cri <= 100:
        ap.error("--fallback-pods must be between 0 and 1000, --cri between 0 and 100")
    if not all(1 <= n <= 1000 for n in opts.parallel):
        ap.error("--parallel sizes must be between 1 and 1000")
    if not all(0 <= n <= 60000 for n in opts.leases):
        ap.error("--leases sizes must be between 0 and 60000 (a /16)")
    opts.started = time.monotonic()
    return opts


def print_report(bench: Bench, impls: List[Impl], info: Dict[str, Any]) -> None:
    print()
    print("nodenet.cni plugins vs Go reference plugins (cniVersion %s, bridge + host-local, %s)" % (cniconf.CNI_VERSION, cniconf.SUBNET))
    print("machine: %d CPUs, kernel %s; Go plugins %s; our plugins on python %s" % (info["cpus"], info["kernel"], info["go_plugins"], info["plugin_python"]))
    print("our plugins: %s" % ("bash shims served by a nodenet-agent in their namespace" if bench.opts.mode == "agent"
                               else "bash shims, no agent: each call runs in-process (the fallback)"))
    print("load average (1 min) at start: %.2f (other work on the machine inflates both columns)" % info["load_avg_before"][0])
    for impl in impls:
        missing = [p for p in PLUGINS if not impl.usable.get(p)]
        if missing:
            print("NOTE: %s has no usable %s: its figures are n/a" % (impl.label, ", ".join(missing)))
    print()
    print(report.table(bench.figures))
    profile = bench.profile
    if profile:
        part = profile["median_ms"]
        bridge = profile["importtime"].get("bridge")
        print()
        print("Where a Python bridge ADD spends its time in the in-process fallback (medians of %d rounds of one of each," % profile["samples"])
        print("measured together, no agent; the bridge exec runs its host-local delegate in the same process):")
        rows = [
            ("python3 -I -S -c pass (bare interpreter start)", part["startup"]),
            ("exec importing a bridge ADD's modules (host-local's too), no work", part["bridge imports"]),
            ("exec importing a host-local ADD's modules, no work", part["host-local imports"]),
            ("host-local ADD alone", part["host-local ADD"]),
            ("bridge+host-local ADD", part["bridge ADD"]),
        ]
        if part["bridge ADD"] is not None and part["bridge imports"] is not None:
            rows.append(("left for the work (netlink, sysctl, store)", part["bridge ADD"] - part["bridge imports"]))
        if bridge:
            rows.append(("top-level imports of the bridge exec (-X importtime, inflated)", bridge["total_ms"]))
        for label, value in rows:
            print("  %-64s %7s ms" % (label, _fmt(value)))
        for plugin, summary in profile["importtime"].items():
            print()
            print(report.importtime_text("python3 -X importtime, one %s ADD" % plugin, summary))
    if bench.errors:
        print()
        print("Problems seen (figures above exclude failed execs):")
        for err in bench.errors:
            print("  - " + err)


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else "%.1f" % value


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_plugins.py needs root (network namespaces): sudo %s %s" % (sys.executable, " ".join(sys.argv)), file=sys.stderr)
        return 2
    interrupt_on_signals()
    sandbox = Sandbox()
    try:
        go = Impl("go", "Go reference (containernetworking-plugins)", opts.go_bin)
        try:
            py = install_python_plugins(sandbox, opts.python)
        except (OSError, RuntimeError, ValueError) as e:  # report n/a, still measure Go
            print("cannot install our plugins: %s" % e, file=sys.stderr)
            py = Impl("py", "Python (nodenet.cni)", sandbox.dir("pybin-missing"))
        impls = [go, py]
        for impl in impls:
            probe(impl)
        info = machine_info(opts.go_bin, opts.python)
        bench = Bench(opts, sandbox, impls)
        bench.log("namespaces prefixed %s; Go usable: %s; Python usable: %s" % (sandbox.prefix, go.usable, py.usable))
        bench.run()
        if opts.cri:
            bench.log("CRI: %d pods per implementation through containerd (bench_cri.py)" % opts.cri)
            import bench_cri  # needs containerd and the test tree's CRI client; only here

            cri_figures, cri_info = bench_cri.run(opts.cri, True, opts.go_bin, opts.python, opts.mode)
            bench.figures.extend(cri_figures)
            info["cri"] = cri_info
        info["seconds"] = round(time.monotonic() - opts.started, 1)
        info["load_avg_after"] = os.getloadavg()
        print_report(bench, impls, info)
        print("\n(%s s in all; load average (1 min) at the end: %.2f)" % (info["seconds"], info["load_avg_after"][0]))
        if opts.json:
            doc = {
                "params": {k: getattr(opts, k) for k in ("pods", "leases", "lease_ops", "parallel", "workers", "fallback_pods", "cri", "quick", "mode")},
                "netconf": cniconf.netconf("<dataDir>"),
                "machine": info,
                "usable": {impl.key: impl.usable for impl in impls},
                "figures": [f.to_dict() for f in bench.figures],
                "profile": bench.profile,
                "errors": bench.errors,
            }
            with open(opts.json, "w") as f:
                json.dump(doc, f, indent=1)
        return 0
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        if "bench" in locals():
            bench.stop_agent()
        sandbox.close()
        left = sandbox.leftovers()
        if left:
            print("WARNING: namespaces left behind: %s" % " ".join(left), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
