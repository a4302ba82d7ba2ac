# SPDX-License-Identifier: GPL-3.0-or-later
"""nodenet.cni.cni_node_check through `ansible` against lab nodes: a new node is not current
(its plugin runtime absent), a node site.yml converged is current in every part, each part that
is not current is named (plugins, agent, node state), --check answers the same, the check
changes nothing, and bad options fail naming the option.

Safety: the lab gets a unique name (nnck<hex>); lab_down removes it by exact name in the
fixture finalizer, whatever the tests did. Drift is made inside the lab nodes only.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from typing import Any, Dict, List

import pytest
from ansiblerun import ROOT, VENV_BIN, ansible_env, task_results

LAB_NAME = "nnck%s" % secrets.token_hex(2)
# the cni_node role's cni_plugin options (its defaults)
PLUGIN = {"bin_dir": ["/opt/cni/bin"], "prefix": "nodenet-", "reference_names": False, "interpreter": "/usr/bin/python3",
          "agent": True, "agent_port": 1021, "agent_run_dir": "/run/nodenet-cni"}
# the check with the role's own options (its vars), after its subnets entry point
PLAYBOOK = """
- hosts: k8s_nodes
  gather_facts: false
  tasks:
    - ansible.builtin.import_role:
        name: nodenet.cni.cni_node
        tasks_from: subnets.yml
    - name: The role's check
      nodenet.cni.cni_node_check:
        plugin: "{{ cni_node_plugin_options }}"
        state: "{{ cni_node_state_options }}"
"""


def run(argv: List[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout, check=False)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, "rc=%d\n%s\n%s" % (proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory = str(tmp_path_factory.mktemp("nodecheck") / "lab.yml")
    lab_vars = ["-e", "lab_name=" + LAB_NAME, "-e", "lab_inventory_path=" + inventory]
    try:
        ok(run([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/lab_up.yml", *lab_vars, "-e", "lab_node_count=2"]))
        yield inventory
    finally:
        run([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/lab_down.yml", *lab_vars])


def nodes(inventory: str) -> List[str]:
    listed = run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, "k8s_nodes", "--list-hosts"]).stdout.split()
    return sorted(n for n in listed if n.startswith(LAB_NAME))


def check(inventory: str, args: Dict[str, Any], tree, *extra: str) -> Dict[str, Dict[str, Any]]:
    """{node: the module's result} of an ad-hoc run on every lab node (ansible's tree output)."""
    proc = run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, "k8s_nodes", "-m", "nodenet.cni.cni_node_check",
                "-a", json.dumps(args), "-t", str(tree), *extra])
    out = {name: json.loads((tree / name).read_text()) for name in os.listdir(str(tree))}
    for result in out.values():
        result.setdefault("failed", proc.returncode != 0)  # the tree callback drops the flag
    assert sorted(out) == nodes(inventory), proc.stdout + proc.stderr
    return out


def role_check(inventory: str, tmp_path, *extra: str) -> Dict[str, Dict[str, Any]]:
    play = tmp_path / "check.yml"
    play.write_text(PLAYBOOK)
    proc = ok(run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, str(play), "-v", *extra]))
    return {name: r["result"] for name, r in task_results(proc.stdout, "The role's check").items()}


def on_node(inventory: str, node: str, command: str) -> str:
    proc = run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, node, "-m", "ansible.builtin.shell", "-a", command])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def converge(inventory: str) -> None:
    ok(run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "site.yml"]))


def test_a_new_node_is_not_current_its_plugin_runtime_absent(lab, tmp_path):
    for checked in (check(lab, {"plugin": PLUGIN}, tmp_path / "plain"), check(lab, {"plugin": PLUGIN}, tmp_path / "check", "--check")):
        for name, result in checked.items():
            assert not result.get("failed") and result["current"] is False and result["not_current"] == "plugin", (name, result)
            assert "is not installed" in result["msg"] and "plugin" not in result and "agent_status" not in result, result
    # and the role's check with the node state: it stops at the plugins (the rest needs their runtime)
    for name, result in role_check(lab, tmp_path).items():
        assert result["not_current"] == "plugin" and "state" not in result, (name, result)
    for name in nodes(lab):  # nothing was written
        assert on_node(lab, name, "find /opt/cni/bin /etc/cni/net.d /etc/nodenet -mindepth 1 2>/dev/null | wc -l").split()[-1] == "0"


def test_a_converged_node_is_current_in_every_part(lab, tmp_path):
    converge(lab)
    for checked in (check(lab, {"plugin": PLUGIN}, tmp_path / "plain"), check(lab, {"plugin": PLUGIN}, tmp_path / "check", "--check")):
        for name, result in checked.items():
            assert result["current"] is True and result["not_current"] == "" and result["changed"] is False, (name, result)
            runtime = result["plugin"]["runtime_dir"]
            assert on_node(lab, name, "test -f %s/MANIFEST.json && echo present" % runtime).strip().endswith("present")
            assert result["agent_status"]["running"] is True and result["agent_status"]["digest"] == result["plugin"]["digest"], result
    for name, result in role_check(lab, tmp_path).items():
        assert result["current"] is True and result["state"]["changed"] is False and result["state"]["changed_parts"] == [], (name, result)


def test_each_part_that_is_not_current_is_named(lab, tmp_path):
    converge(lab)
    first, second = nodes(lab)
    # plugins: other options than the installed ones (another prefix: no such launchers)
    for name, result in check(lab, {"plugin": dict(PLUGIN, prefix="other-")}, tmp_path / "prefix").items():
        assert result["current"] is False and result["not_current"] == "plugin" and "not proven current" in result["msg"], (name, result)
    # the agent: stopped on one node (the lab supervisor stops it on SIGTERM)
    try:
        on_node(lab, first, "kill -TERM $(cat /etc/nodenet/agent-supervisor.pid); for i in $(seq 50); do "
                            "[ -e /etc/nodenet/agent-supervisor.pid ] || break; sleep 0.1; done; ! /opt/cni/bin/nodenet-agent --status")
        checked = check(lab, {"plugin": PLUGIN}, tmp_path / "agent")
        assert checked[first]["not_current"] == "agent" and checked[first]["agent_status"]["running"] is False, checked[first]
        assert "no agent serves" in checked[first]["msg"] and checked[second]["current"] is True, checked
        # not asked for the agent, the node is current
        assert check(lab, {"plugin": PLUGIN, "agent": False}, tmp_path / "noagent")[first]["current"] is True
        # the node state: a peer route deleted in the other node; under --check too, and the check repairs nothing
        peer = on_node(lab, first, "cat /etc/nodenet/pod_subnet").split()[-1]
        on_node(lab, second, "ip route del %s proto 77" % peer)
        for extra in ((), ("--check",)):
            result = role_check(lab, tmp_path, *extra)[second]
            assert result["not_current"] == "state" and result["state"]["changed_parts"] == ["routes"], result
            assert result["msg"] == "state: cni_node_state would change: routes", result
        assert peer not in on_node(lab, second, "ip route show proto 77")
    finally:
        converge(lab)
    assert all(r["current"] for r in check(lab, {"plugin": PLUGIN}, tmp_path / "again").values())


@pytest.mark.parametrize(
    "args, words",
    [
        ({"plugin": dict(PLUGIN, state="absent")}, "plugin.state must be present"),
        ({"plugin": dict(PLUGIN, digest="0" * 64)}, "plugin.digest is set by the cni_plugin action plugin"),
        ({"plugin": PLUGIN, "state": {"runtime_dir": "/tmp"}}, "state.runtime_dir is the plugin runtime's"),
        ({"plugin": dict(PLUGIN, agent=False), "agent": True}, "agent: plugin.agent is false"),
        ({"state": {}}, "plugin"),
    ],
)
def test_bad_options_fail_naming_the_option(lab, tmp_path, args, words):
    for name, result in check(lab, args, tmp_path / "bad").items():
        assert result.get("failed") and words in result["msg"], (name, result)
