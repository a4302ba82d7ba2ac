# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the lab's modules (lab_node, lab_ssh) share: their error, the option
rules, bounded commands and the observe -> plan -> apply -> observe loop.

A lab module is a planner: `observe()` reads what is there, `plan(state)`
lists the steps as (description, argv or callable), and a run is correct
only when a second plan after applying them is empty. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

Step = Tuple[str, Union[List[str], Callable[[], Any]]]

# what `ip netns add` accepts and what the lab's names are made of
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
# a state_dir is the node's own directory, never one of these
SHARED_DIRS = ("/", "/run", "/tmp", "/var", "/etc")


NETNS_DIR = "/run/netns"

# Runs inside the node (its netns and mount namespace entered; stdlib only, the node's python).
# Prints what the node looks like from inside: hostname, (dev, ino) of each path given,
# the mount points and what is mounted on /sys.
NODE_VIEW = r"""
import json, os, re, sys
def unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)  # mountinfo writes blanks as \040
view = {"hostname": open("/proc/sys/kernel/hostname").read().strip(), "paths": {}, "mounts": [], "sys": None}
for path in json.loads(sys.argv[1]):
    try:
        st = os.stat(path)
        view["paths"][path] = [st.st_dev, st.st_ino]
    except OSError:
        view["paths"][path] = None
with open("/proc/self/mountinfo") as f:
    for line in f:
        fields = line.split()
        rest = fields[fields.index("-") + 1:]
        view["mounts"].append(unescape(fields[4]))
        if fields[4] == "/sys":
            view["sys"] = [rest[0], rest[1]]  # the last mount on /sys wins
print(json.dumps(view))
"""


class LabError(Exception):
    pass


def node_paths(name: str, state_dir: str) -> Tuple[str, str, str, str]:
    """A node's network namespace, its state_dir, and the files its mount and UTS namespaces persist on."""
    state_dir = state_dir.rstrip("/") or "/"
    return os.path.join(NETNS_DIR, name), state_dir, os.path.join(state_dir, "mnt"), os.path.join(state_dir, "uts")


def node_view(run: Callable[..., Tuple[int, str, str]], netns: str, mnt: str, paths: Sequence[str], uts: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """NODE_VIEW run inside the node, or None when the node cannot be entered."""
    argv = ["nsenter", "--net=" + netns, "--mount=" + mnt] + (["--uts=" + uts] if uts else [])
    rc, out, dummy = run(argv + ["--", sys.executable, "-c", NODE_VIEW, json.dumps(list(paths))], check=False)
    return json.loads(out) if rc == 0 else None


def require_root(module: Any) -> None:
    if os.geteuid() != 0:
        module.fail_json(msg="the lab needs root (namespaces and mounts); run the lab playbooks as root")


def check_name(option: str, value: str) -> None:
    if not NAME_RE.match(value):
        raise LabError("%s %r is not a valid namespace name" % (option, value))


def check_state_dir(path: str) -> None:
    if not os.path.isabs(path) or os.path.normpath(path) in SHARED_DIRS:
        raise LabError("state_dir must be an absolute path of the node's own directory, got %r" % path)


def run_bounded(module: Any, argv: Sequence[str], timeout: int, check: bool = True) -> Tuple[int, str, str]:
    """run_command has no timeout: coreutils' timeout(1) bounds every command (rc 124)."""
    rc, out, err = module.run_command(["timeout", "-k", "10", str(timeout)] + list(argv), environ_update={"LC_ALL": "C"})
    command = " ".join(shlex.quote(a) for a in argv)
    if rc == 124:
        raise LabError("%s timed out after %ds" % (command, timeout))
    if check and rc != 0:
        raise LabError("%s failed (rc=%d): %s" % (command, rc, (err or out).strip()))
    return rc, out, err


def apply_steps(steps: Sequence[Step], run: Callable[[List[str]], Any]) -> None:
    """Run each step in order: a callable in-process (its OSError named by the step), else `run(argv)`."""
    for description, step in steps:
        if callable(step):
            try:
                step()
            except OSError as e:
                raise LabError("%s: %s" % (description, e)) from e
        else:
            run(step)


def converge(
    node: Any,
    check_mode: bool,
    result: Dict[str, Any],
    what: str,
    replan: Optional[Callable[[Any], List[Step]]] = None,
    before_apply: Optional[Callable[[], None]] = None,
) -> Tuple[Any, Any, Any]:
    """Observe, plan, apply (not in check mode), observe again; steps still
    planned then are a failure. Fills result's actions and changed; returns
    (state before, state after, summary after). Unapplied, the state after is
    the state before and the summary is the predicted one in check mode."""
    before = node.observe()
    steps = node.plan(before)
    result["actions"] = [description for description, dummy in steps]
    result["changed"] = bool(steps)
    if not steps:
        return before, before, node.summary(before)
    if check_mode:
        return before, before, node.desired_summary(before)
    if before_apply is not None:
        before_apply()
    node.apply(steps)
    after = node.observe()
    remaining = (replan or node.plan)(after)
    if remaining:
        raise LabError("%s is still not as requested; would still: %s" % (what, "; ".join(d for d, dummy in remaining)))
    return before, after, node.summary(after)


def summary_diff(before: Dict[str, Any], after: Dict[str, Any], header: str) -> Dict[str, str]:
    """Ansible's diff of two summaries, as sorted JSON."""
    return dict(
        before=json.dumps(before, indent=2, sort_keys=True) + "\n",
        after=json.dumps(after, indent=2, sort_keys=True) + "\n",
        before_header=header,
        after_header=header,
    )
