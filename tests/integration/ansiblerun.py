# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a collection module through the real `ansible` CLI, optionally inside a test netns.

Running the whole ad-hoc command under `ip netns exec` makes the module see
that namespace as "the node": the module code runs exactly as on a real one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
# Modules run on the node's own python3 (Debian's, nothing pip-installed), as
# on a stock node; they borrow pyroute2/netaddr from an installed plugin runtime.
NODE_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def node_python_args(interpreter: Optional[str] = None) -> List[str]:
    """The implicit localhost runs modules on ansible_playbook_python (the
    venv) whatever ANSIBLE_PYTHON_INTERPRETER says; an extra var beats it."""
    return ["-e", "ansible_python_interpreter=" + (interpreter or NODE_PYTHON)]


def ansible_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"),
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=NODE_PYTHON,
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    return env


def _ansible_argv(module: str, args: Dict[str, Any], tree: str, check: bool, diff: bool, interpreter: Optional[str] = None) -> List[str]:
    argv = [os.path.join(VENV_BIN, "ansible"), "localhost", "-m", module, "--tree", tree] + node_python_args(interpreter)
    if args:  # "{}" would be taken as raw params
        argv += ["-a", json.dumps(args)]
    return argv + (["--check"] if check else []) + (["--diff"] if diff else [])


def run_module(
    module: str,
    args: Dict[str, Any],
    netns: Optional[str] = None,
    check: bool = False,
    diff: bool = False,
    timeout: float = 120,
    bin_dir: Optional[str] = None,
    prefix: Sequence[str] = (),
    env: Optional[Dict[str, str]] = None,
    interpreter: Optional[str] = None,
) -> Dict[str, Any]:
    """The module's result dict for localhost (raises if ansible itself broke).

    The result is read from `--tree` (the builtin tree callback writes each
    host's result as JSON), not parsed from screen output. `bin_dir` (where
    cni_plugin installed the plugins and their runtime) is passed as the
    module's bin_dir option unless `args` has one. `netns` runs it under
    `ip netns exec`, `prefix` under any other argv (e.g. nsenter); `env` is
    added to ansible's environment; `interpreter` is the node's Python
    (default: its python3).
    """
    if bin_dir is not None and "bin_dir" not in args:
        args = dict(args, bin_dir=[bin_dir])
    if netns:
        prefix = [*prefix, "ip", "netns", "exec", netns]
    tree = tempfile.mkdtemp(prefix="nnt-ansible-")
    argv = list(prefix) + _ansible_argv(module, args, tree, check, diff, interpreter)
    full_env = ansible_env()
    full_env.update(env or {})
    proc = subprocess.run(argv, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        with open(os.path.join(tree, "localhost")) as f:
            out = json.load(f)
    except (OSError, ValueError):
        raise AssertionError("ansible wrote no result (rc=%d)\nstdout=%s\nstderr=%s" % (proc.returncode, proc.stdout, proc.stderr))
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    out["_stdout"] = proc.stdout  # the --diff text is rendered only on screen
    out["_stderr"] = proc.stderr  # and the warnings
    out.setdefault("failed", proc.returncode != 0)  # the tree callback drops the flag
    return out


_TASK_HEADER = re.compile(r"^TASK \[(?:[^\]]*? : )?(.*)\] \**$")
_HOST_LINE = re.compile(r"^(ok|changed|skipping|fatal|failed): \[([^\]]+?)(?: -> [^\]]+)?\](?:: [A-Z]+!)?(?: => (\{.*\}))?$")
_INCLUDED = re.compile(r"^included: \S+ for (.*)$")


def task_results(stdout: str, name: str) -> Dict[str, Dict[str, Any]]:
    """What the default callback printed for every run of the task `name` (its name without the
    role prefix): {host: {"status": ok|changed|skipping|included|fatal|failed, "result": the
    result JSON (with -v), else {}}}; the last line per host wins."""
    out: Dict[str, Dict[str, Any]] = {}
    current = None
    for line in stdout.splitlines():
        header = _TASK_HEADER.match(line)
        if header:
            current = header.group(1) == name
            continue
        if not current:
            continue
        included = _INCLUDED.match(line)
        if included:
            for host in included.group(1).split(", "):
                out[host.strip()] = {"status": "included", "result": {}}
            continue
        host_line = _HOST_LINE.match(line)
        if host_line:
            out[host_line.group(2)] = {"status": host_line.group(1), "result": json.loads(host_line.group(3)) if host_line.group(3) else {}}
    return out
