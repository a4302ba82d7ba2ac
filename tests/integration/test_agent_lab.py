# SPDX-License-Identifier: GPL-3.0-or-later
"""The node agent's lifecycle on a lab node: the role starts it under a
supervisor inside the node, cni_facts reports it, kill -9 brings it back,
lab_down stops it.

Safety: a lab of its own (unique name), removed by lab_down in the
finalizer; the agent runs only inside the lab node's namespaces.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, List

import pytest
from ansiblerun import ROOT, VENV_BIN, ansible_env

LAB_NAME = "nnt%s" % secrets.token_hex(2)
NODE = "%s-node1" % LAB_NAME
RECAP = re.compile(r"^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % re.escape(NODE), re.M)


def playbook(name: str, inventory: str, *extra: str) -> str:
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name + ".yml")]
    argv += ["-e", "lab_name=" + LAB_NAME, "-e", "lab_inventory_path=" + inventory, *extra]
    proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, "%s failed (rc=%d)\n%s\n%s" % (name, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])
    return proc.stdout


def agent_facts(inventory: str) -> Dict[str, Any]:
    tree = tempfile.mkdtemp(prefix="nnt-agent-tree-")
    try:
        argv = [os.path.join(VENV_BIN, "ansible"), "-i", inventory, NODE, "-m", "nodenet.cni.cni_facts", "-a", "gather=plugins", "--tree", tree]
        proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
        with open(os.path.join(tree, NODE)) as f:
            result = json.load(f)
        assert proc.returncode == 0, result
        return result["ansible_facts"]["cni"]["agent"]
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def processes_of_lab() -> List[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "agent-supervisor" in cmd or "nodenet-agent" in cmd:
            try:
                if os.stat("/proc/%s/ns/net" % pid).st_ino == os.stat("/run/netns/" + NODE).st_ino:
                    found.append("%s %s" % (pid, cmd))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory = str(tmp_path_factory.mktemp("agentlab") / "lab.yml")
    try:
        playbook("lab_up", inventory, "-e", "lab_node_count=1")
        yield inventory
    finally:
        playbook("lab_down", inventory)


def test_role_runs_the_agent_in_the_node_and_facts_report_it(lab):
    out = playbook("site", lab, "-i", lab)
    facts = agent_facts(lab)
    assert facts["running"] and facts["current"], facts
    assert facts["calls"] >= 2 and facts["errors"] == 0  # the site's probe pod: ADD and DEL through the agent
    assert processes_of_lab(), "no agent process in the node's network namespace"
    # a second run starts nothing and restarts nothing
    again = playbook("site", lab, "-i", lab, "--skip-tags", "probe")
    assert re.search(r"ok=\d+\s+changed=0\s", RECAP.search(again).group(0)), again[-3000:]
    assert agent_facts(lab)["pid"] == facts["pid"]
    assert "Agent | Start the lab supervisor" in out


FAKE_DIGEST = "e" * 64

# In the node: a second runtime (a copy of the installed one whose MANIFEST says FAKE_DIGEST) and the
# agent launcher pointed at it, as an upgrade leaves them; prints the copy's path.
SECOND_RUNTIME = r"""
import glob, json, os, shutil, sys
launcher = "/opt/cni/bin/nodenet-agent"
[manifest] = glob.glob("/opt/cni/bin/.nodenet-cni/*/MANIFEST.json")
old = os.path.dirname(manifest)
new = os.path.join(os.path.dirname(old), sys.argv[1][:16])
shutil.copytree(old, new)
with open(os.path.join(new, "MANIFEST.json")) as f:
    data = json.load(f)
data["digest"] = sys.argv[1]
with open(os.path.join(new, "MANIFEST.json"), "w") as f:
    json.dump(data, f)
with open(launcher) as f:
    text = f.read()
with open(launcher, "w") as f:
    f.write(text.replace(old, new))
print(new)
"""

AGENT_TASKS = """
- hosts: k8s_nodes
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: nodenet.cni.cni_node
        tasks_from: agent_lab.yml
"""


def in_node(inventory: str, command: str) -> str:
    argv = [os.path.join(VENV_BIN, "ansible"), "-i", inventory, NODE, "-m", "raw", "-a", command]
    proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout


def test_an_agent_on_another_runtime_is_restarted_on_the_installed_one(lab, tmp_path):
    """The role's one agent task restarts an agent that serves another runtime than the one
    cni_plugin installed (an upgrade), waits until the new one serves it, and says changed;
    site.yml then puts the real runtime back and restarts the agent on it again."""
    before = agent_facts(lab)
    assert before["running"] and before["current"], before
    out = in_node(lab, "python3 -I -c %s %s" % (shlex.quote(SECOND_RUNTIME), FAKE_DIGEST))
    second = [line for line in out.splitlines() if line.startswith("/opt/cni/bin/.nodenet-cni/")][0]
    try:
        tasks = tmp_path / "agent.yml"
        tasks.write_text(AGENT_TASKS)
        argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", lab, str(tasks), "-e", json.dumps({"cni_node_plugin_install": {"digest": FAKE_DIGEST}})]
        proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert re.search(r"ok=\d+\s+changed=1\s", RECAP.search(proc.stdout).group(0)), proc.stdout[-3000:]
        now = agent_facts(lab)
        assert now["running"] and now["pid"] != before["pid"], now
        assert now["digest"] == FAKE_DIGEST, now
        # the real runtime back (site.yml repairs the launcher), and the agent on it
        playbook("site", lab, "-i", lab, "--skip-tags", "probe")
        after = agent_facts(lab)
        assert after["running"] and after["current"] and after["digest"] == before["digest"], after
        assert after["pid"] != now["pid"]
    finally:
        in_node(lab, "rm -rf %s" % shlex.quote(second))


def test_the_supervisor_brings_a_killed_agent_back(lab):
    before = agent_facts(lab)
    assert before["running"]
    os.kill(before["pid"], signal.SIGKILL)
    for _round in range(120):  # bounded: the supervisor restarts it within a few seconds
        time.sleep(0.5)
        now = agent_facts(lab)
        if now["running"] and now["pid"] != before["pid"]:
            break
    assert now["running"] and now["pid"] != before["pid"] and now["current"], now


def test_lab_down_stops_the_agent(lab):
    pids = [int(p.split()[0]) for p in processes_of_lab()]
    assert len(pids) >= 2, "expected the supervisor and the agent"  # supervisor + agent
    playbook("lab_down", lab)
    for _round in range(60):  # bounded: the supervisor polls its lifeline every second
        if not any(os.path.exists("/proc/%d" % pid) for pid in pids):
            break
        time.sleep(0.5)
    assert not [pid for pid in pids if os.path.exists("/proc/%d" % pid)]
