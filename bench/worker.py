# SPDX-License-Identifier: GPL-3.0-or-later
"""The timing loop of the benchmark: exec plugins like a runtime and time them.

bench_plugins.py starts this file *inside* the benchmark's host namespace
(`ip netns exec <host> python worker.py JOB`), so the time measured around
each plugin exec excludes `ip netns exec` itself, which costs a few ms.

Stdlib only; no imports from the collection (nothing here may change what
is measured). Input: a JSON job file; output: JSON on stdout.

    job    = {"timeout": s, "parallel": 0 | workers, "ops": [op, ...]}
    op     = {"argv": [...], "env": {...}, "stdin": str, "keep_stderr": bool}
    result = {"wall_s": s, "ops": [{"rc", "wall_ms", "cpu_ms", "maxrss_kb",
                                    "stdout", "stderr"}, ...]}

Per-op figures come from wait4(2) on the plugin's pid: its own rusage plus
that of the children it reaped (the delegated IPAM plugin), so `maxrss_kb`
is the largest process of the exec tree and `cpu_ms` the tree's user+sys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

STDERR_KEEP = 4000  # bytes of a plugin's stderr kept unless the op asks for all


def run_op(op: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    data = op.get("stdin", "").encode()
    with tempfile.TemporaryFile() as err_file:
        # stderr goes to a file, so reading stdout to EOF can never deadlock.
        start = time.perf_counter()
        proc = subprocess.Popen(op["argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file, env=op["env"])
        killer = threading.Timer(timeout, _kill, (proc.pid,))
        killer.start()
        try:
            try:
                proc.stdin.write(data)  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:  # the plugin exited without reading stdin
                pass
            out = proc.stdout.read()  # type: ignore[union-attr]
            # wait4, not Popen.wait: we want this child's own rusage.
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: keep Popen from waiting again
        proc.stdout.close()  # type: ignore[union-attr]
        err_file.seek(0)
        err = err_file.read()
    if not op.get("keep_stderr"):
        err = err[-STDERR_KEEP:]
    return {
        "rc": proc.returncode,
        "wall_ms": wall * 1000.0,
        "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000.0,
        "maxrss_kb": usage.ru_maxrss,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
    }


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    timeout = float(job.get("timeout", 60))
    ops: List[Dict[str, Any]] = job["ops"]
    workers = int(job.get("parallel") or 0)
    start = time.perf_counter()
    if workers:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda op: run_op(op, timeout), ops))
    else:
        results = [run_op(op, timeout) for op in ops]
    return {"wall_s": time.perf_counter() - start, "ops": results}


def main() -> int:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    json.dump(run_job(job), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
