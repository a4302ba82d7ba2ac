# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a collection module through the real `ansible` CLI, optionally inside a test netns.

Running the whole ad-hoc command under `ip netns exec` makes the module see
that namespace as "the node": the module code runs exactly as on a real one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


def ansible_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"),
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    return env


def run_module(module: str, args: Dict[str, Any], netns: Optional[str] = None, check: bool = False, diff: bool = False, timeout: float = 120) -> Dict[str, Any]:
    """The module's result dict for localhost (raises if ansible itself broke).

    The result is read from `--tree` (the builtin tree callback writes each
    host's result as JSON), not parsed from screen output.
    """
    tree = tempfile.mkdtemp(prefix="nnt-ansible-")
    argv = [os.path.join(VENV_BIN, "ansible"), "localhost", "-m", module, "--tree", tree]
    if args:  # "{}" would be taken as raw params
        argv += ["-a", json.dumps(args)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout, check=False)
    try:
        with open(os.path.join(tree, "localhost")) as f:
            out = json.load(f)
    except (OSError, ValueError):
        raise AssertionError("ansible wrote no result (rc=%d)\nstdout=%s\nstderr=%s" % (proc.returncode, proc.stdout, proc.stderr))
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    out["_stdout"] = proc.stdout  # the --diff text is rendered only on screen
    out.setdefault("failed", proc.returncode != 0)  # the tree callback drops the flag
    return out
