# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmark still runs end to end (bench/bench_plugins.py --quick).

A smoke test of the harness, not of speed: no timing is asserted. It checks
that a quick run completes, that neither implementation handed out a
duplicate address in the parallel burst, and that every figure has a value
for both Go and Python.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench", "bench_plugins.py")
GO_BRIDGE = "/usr/lib/cni/bridge"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not os.path.isfile(GO_BRIDGE):
        pytest.skip("Go reference plugins not installed (apt containernetworking-plugins)")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run([sys.executable, BENCH, "--quick", "--quiet", "--json", str(out)], capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, "bench failed rc=%d\nstdout=%s\nstderr=%s" % (proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    with open(out) as f:
        return json.load(f), proc.stdout.decode()


def test_quick_run_completes_and_prints_the_table(quick_run):
    doc, stdout = quick_run
    assert "Py/Go" in stdout
    assert doc["params"]["quick"] is True


def test_parallel_adds_hand_out_no_duplicate_address(quick_run):
    doc, _stdout = quick_run
    dups = [f for f in doc["figures"] if f["key"].startswith("par") and f["key"].endswith("_add_dups")]
    assert dups
    for f in dups:
        assert f["go"] == 0
        assert f["py"] == 0


def test_every_figure_is_reported_for_both_implementations(quick_run):
    doc, _stdout = quick_run
    missing = ["%s (%s)" % (f["key"], impl) for f in doc["figures"] for impl in ("go", "py") if f[impl] is None and not (impl == "go" and f.get("py_only"))]
    assert not missing, "figures without a value: %s; problems: %s" % (missing, doc["errors"])
