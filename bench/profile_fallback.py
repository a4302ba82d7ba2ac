# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the shims' in-process fallback spends a call: bridge+host-local ADD
and DEL exec'd with the shim's own fallback command line, no agent anywhere.

    sudo .venv/bin/python bench/profile_fallback.py [--pods 20] [--importtime] [--cprofile add|del] [--strace add|del]

A developer's tool: it installs this checkout's plugins into a temp dir
(`installer.install_local`, the bench's way), makes a throwaway host
namespace `nnpfb<hex>-host` and one `...-cN` namespace per pod, and runs
its timing loop inside the host namespace (`ip netns exec`, so its own
cost is not measured); every namespace is deleted by exact name at the
end, also on failure or Ctrl-C. Nothing is done in the root namespace.

Per call it prints the medians of wall time and of the exec tree's CPU
(wait4's rusage), and of a bare `python3 -I -S -c pass` in the same rounds;
`--shim` execs the installed bash shim instead of the python command (what
a runtime does, including the shim's failed connect); `--importtime` adds
one ADD under `-X importtime` (modules by cumulative and self time);
`--cprofile` one call, imports included, under cProfile; `--strace` one
call under `strace -f -c` (syscall counts) when strace is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CODE = "import sys; sys.path.insert(0, %r); from nodenet_cni.agent.fallback import main; raise SystemExit(main('bridge'))"
# the modules a call imports, in import order (sys.modules keeps insertion order)
LIST_MODULES = (
    "import sys; _before = set(sys.modules); sys.path.insert(0, %r)\n"
    "from nodenet_cni.agent.fallback import main\n"
    "try:\n    code = main('bridge')\n"
    "finally:\n    sys.stderr.write('\\nnnpfb-modules: %%s\\n' %% ' '.join(m for m in list(sys.modules) if m not in _before))\n"
    "raise SystemExit(code)\n"
)
# the same call with those modules imported first: wall time of the imports and of the work
SPLIT = (
    "import time; _t0 = time.perf_counter()\n"
    "import sys; sys.path.insert(0, %r)\n"
    "from nodenet_cni.agent.fallback import lazy_imports, main\n"
    "lazy_imports()\n"
    "%s\n"
    "_t1 = time.perf_counter()\n"
    "try:\n    code = main('bridge')\n"
    "finally:\n    sys.stderr.write('\\nnnpfb-split: %%f %%f\\n' %% ((_t1 - _t0) * 1000, (time.perf_counter() - _t1) * 1000))\n"
    "raise SystemExit(code)\n"
)
CPROFILE = (
    "import cProfile, pstats, sys; sys.path.insert(0, %r)\n"
    "%s\n"
    "p = cProfile.Profile(); p.enable()\n"
    "from nodenet_cni.agent.fallback import main\n"
    "try:\n    code = main('bridge')\nfinally:\n    p.disable(); p.dump_stats(%r)\n"
    "raise SystemExit(code)\n"
)


def parse_args(argv: List[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--shim", action="store_true", help="exec the installed bash shim (a runtime's view) instead of its python command")
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--split", action="store_true", help="also time each call's imports apart from its work (modules imported first)")
    ap.add_argument("--cprofile", choices=("add", "del", "add-work", "del-work"), default=None,
                    help="one call under cProfile, imports included (-work: the modules it imports are imported first, unprofiled)")
    ap.add_argument("--strace", choices=("add", "del"), default=None)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--against", default="", metavar="BIN_DIR",
                    help="also time the plugins installed in BIN_DIR (another checkout's `installer.install_local`), alternating with this one's")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--child", nargs=3, metavar=("RUNTIME", "BIN", "PREFIX"), help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if not 1 <= opts.pods <= 500:
        ap.error("--pods must be between 1 and 500")
    return opts


def parent(opts: argparse.Namespace) -> int:
    from bench_plugins import install_in_sandbox
    from sandbox import Sandbox, interrupt_on_signals

    interrupt_on_signals()
    sandbox = Sandbox()
    sandbox.prefix = sandbox.prefix.replace("nnbench", "nnpfb")
    try:
        bin_dir, runtime = install_in_sandbox(sandbox, opts.python)
        host = sandbox.netns("host")
        sandbox.netns_many("c", (opts.pods + 2) * (2 if opts.against else 1))
        argv = ["ip", "netns", "exec", host, sys.executable, "-I", os.path.abspath(__file__), "--pods", str(opts.pods), "--top", str(opts.top),
                "--python", opts.python]
        for flag in ("shim", "importtime", "split"):
            if getattr(opts, flag):
                argv.append("--" + flag)
        for flag in ("cprofile", "strace"):
            if getattr(opts, flag):
                argv += ["--" + flag, getattr(opts, flag)]
        if opts.against:
            argv += ["--against", os.path.abspath(opts.against)]
        argv += ["--child", runtime, bin_dir, sandbox.prefix]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NNPFB_DATA": sandbox.dir("data"), "NNPFB_TMP": sandbox.dir("tmp")}
        return subprocess.run(argv, env=env, timeout=1800, check=False).returncode
    finally:
        sandbox.close()


def run(argv: List[str], env: Dict[str, str], stdin: bytes) -> Tuple[int, bytes, bytes, float, float]:
    """rc, stdout, stderr, wall ms, CPU ms (user+sys of the exec tree, from wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate(stdin, timeout=60)
    wall = (time.perf_counter() - t0) * 1000
    return proc.returncode, out, err, wall, _last_child_usage()  # this process runs one child at a time


_children = [0.0]


def _last_child_usage() -> float:
    """CPU of the children reaped since the last call (one exec tree)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (r.ru_utime + r.ru_stime) * 1000
    spent, _children[0] = total - _children[0], total
    return spent


def median(values: List[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else float("nan")


def child(opts: argparse.Namespace) -> int:
    import cniconf

    runtime, bin_dir, prefix = opts.child
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)  # as a node has it: the shim's connect is refused, not unreachable
    data = os.environ["NNPFB_DATA"]
    conf = cniconf.netconf(data)
    body = json.dumps(conf).encode()
    sets = [("this checkout", runtime, bin_dir)]
    if opts.against:
        from bench_plugins import load_installer

        sets.append(("--against", load_installer().launcher_runtime_dir(os.path.join(opts.against, "bridge")), opts.against))
    pods = ["/var/run/netns/%sc%d" % (prefix, i) for i in range((opts.pods + 2) * len(sets))]
    ids = [cniconf.new_container_id() for _pod in pods]
    base = [opts.python, "-I", "-S"]
    code = CODE % runtime
    _last_child_usage()

    def call(command: str, i: int, prev: bytes = b"", extra: Tuple[str, ...] = (), wrap: Tuple[str, ...] = (), text: str = "",
             which: int = 0) -> Tuple[bytes, bytes, float, float]:
        _label, rdir, bdir = sets[which]
        i += which * (opts.pods + 2)
        env = cniconf.runtime_env(command, ids[i], pods[i], bdir)
        stdin = json.dumps(cniconf.with_prev_result(conf, prev.decode())).encode() if prev else body
        if opts.shim and not extra and not text:
            argv = [os.path.join(bdir, "bridge")]
        else:
            argv = list(wrap) + base + list(extra) + ["-c", text or CODE % rdir]
        rc, out, err, wall, cpu = run(argv, env, stdin)
        if rc != 0:
            raise RuntimeError("%s pod %d: rc %d %s %s" % (command, i, rc, out.decode(), err.decode()[-2000:]))
        return out, err, wall, cpu

    def bare() -> Tuple[float, float]:
        rc, _out, _err, wall, cpu = run(base + ["-c", "pass"], {}, b"")
        assert rc == 0
        return wall, cpu

    figures: Dict[str, List[float]] = {}
    results: Dict[Tuple[int, int], bytes] = {}
    for which in range(len(sets)):  # warm-up (creates the bridge), not counted
        out, _e, _w, _c = call("ADD", opts.pods, which=which)
        call("DEL", opts.pods, out, which=which)
    for i in range(opts.pods):  # rounds: bare, then each set's ADD, alternating
        for key, (w, c) in (("bare", bare()),):
            figures.setdefault(key + " wall", []).append(w)
            figures.setdefault(key + " cpu", []).append(c)
        for which in range(len(sets)):
            results[which, i], _e, w, c = call("ADD", i, which=which)
            figures.setdefault("%d ADD wall" % which, []).append(w)
            figures.setdefault("%d ADD cpu" % which, []).append(c)
    for i in range(opts.pods):
        for which in range(len(sets)):
            _o, _e, w, c = call("DEL", i, results[which, i], which=which)
            figures.setdefault("%d DEL wall" % which, []).append(w)
            figures.setdefault("%d DEL cpu" % which, []).append(c)
    print("%d rounds, load average %s, %s" % (opts.pods, " ".join("%.1f" % x for x in os.getloadavg()), "bash shim" if opts.shim else "python command"))
    rows = [("bare", "python3 -I -S -c pass")] + [("%d %s" % (w, op), "%s %s" % (op, sets[w][0])) for op in ("ADD", "DEL") for w in range(len(sets))]
    for key, label in rows:
        print("  %-22s wall median %7.2f ms (min %7.2f)   CPU median %7.2f ms" % (
            label, median(figures[key + " wall"]), min(figures[key + " wall"]), median(figures[key + " cpu"])))

    spare = opts.pods + 1
    if opts.split:
        split: Dict[str, List[Tuple[float, float]]] = {"ADD": [], "DEL": []}
        for command in ("ADD", "DEL"):
            out, err, _w, _c = call("ADD", spare, text=LIST_MODULES % runtime if command == "ADD" else "")
            out2, err2, _w, _c = call("DEL", spare, out, text=LIST_MODULES % runtime if command == "DEL" else "")
            line = next(line for line in (err if command == "ADD" else err2).decode().splitlines() if line.startswith("nnpfb-modules: "))
            modules = [m for m in line.split()[1:] if not m.startswith("org")]  # org.python.core: copy's probe of Jython, never a module
            text = SPLIT % (runtime, "\n".join("import %s" % m for m in modules))
            for i in range(opts.pods):
                if command == "ADD":
                    out, err, _w, _c = call("ADD", i, text=text)
                    call("DEL", i, out)
                    stderr = err
                else:
                    out, _e, _w, _c = call("ADD", i)
                    _o, stderr, _w, _c = call("DEL", i, out, text=text)
                line = next(line for line in stderr.decode().splitlines() if line.startswith("nnpfb-split: "))
                imports, work = (float(x) for x in line.split()[1:])
                split[command].append((imports, work))
            print("  %s with its %d modules imported first: imports median %.2f ms, work median %.2f ms" % (
                command, len(modules), median([a for a, _b in split[command]]), median([b for _a, b in split[command]])))
    if opts.importtime:
        out, err, _w, _c = call("ADD", spare, extra=("-X", "importtime"))
        call("DEL", spare, out)
        entries = []
        for line in err.decode().splitlines():
            if line.startswith("import time:") and "|" in line and "self [us]" not in line:
                self_us, cumul, name = line[len("import time:"):].split("|")
                entries.append((int(self_us), int(cumul), name.rstrip()))
        top = sum(c for _s, c, n in entries if not n.startswith("  ")) / 1000
        print("-X importtime, one ADD: %d modules, %.1f ms of top-level imports" % (len(entries), top))
        print("  by cumulative:")
        for s, c, n in sorted(entries, key=lambda e: -e[1])[: opts.top]:
            print("    %8.2f ms %8.2f self  %s" % (c / 1000, s / 1000, n))
        print("  by self:")
        for s, c, n in sorted(entries, key=lambda e: -e[0])[: opts.top]:
            print("    %8.2f ms  %s" % (s / 1000, n.strip()))
        print("  all, in import order:")
        print("    " + " ".join(n.strip() for _s, _c, n in entries))
    if opts.cprofile:
        stats_file = os.path.join(os.environ["NNPFB_TMP"], "fallback.pstats")
        preimport = ""
        if opts.cprofile.endswith("-work"):
            out, err, _w, _c = call("ADD", spare, text=LIST_MODULES % runtime)
            call("DEL", spare, out)
            line = next(line for line in err.decode().splitlines() if line.startswith("nnpfb-modules: "))
            preimport = "from nodenet_cni.agent.fallback import lazy_imports\nlazy_imports()\n" + "\n".join(
                "import %s" % m for m in line.split()[1:] if not m.startswith("org"))
        text = CPROFILE % (runtime, preimport, stats_file)
        if opts.cprofile.startswith("add"):
            out, _e, _w, _c = call("ADD", spare, text=text)
            call("DEL", spare, out)
        else:
            out, _e, _w, _c = call("ADD", spare)
            call("DEL", spare, out, text=text)
        import pstats

        stats = pstats.Stats(stats_file)
        stats.sort_stats("cumulative").print_stats(opts.top)
        stats.sort_stats("tottime").print_stats(opts.top)
    if opts.strace:
        strace = "/usr/bin/strace"
        if not os.path.exists(strace):
            print("strace is not installed")
            return 0
        log = os.path.join(os.environ["NNPFB_TMP"], "strace.txt")
        wrap = (strace, "-f", "-c", "-w", "-o", log)
        if opts.strace == "add":
            out, _e, _w, _c = call("ADD", spare, wrap=wrap, text=code)
            call("DEL", spare, out)
        else:
            out, _e, _w, _c = call("ADD", spare)
            call("DEL", spare, out, wrap=wrap, text=code)
        with open(log) as f:
            print(f.read())
    return 0


def main(argv: List[str]) -> int:
    opts = parse_args(argv)
    if opts.child:
        return child(opts)
    if os.geteuid() != 0:
        raise SystemExit("profile_fallback: needs root (network namespaces)")
    return parent(opts)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
