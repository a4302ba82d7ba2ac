# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab: lab_up / lab_down through ansible-playbook, nodes used through the labnode connection.

Safety: the lab gets a unique name (nnt<hex>), so every namespace, link, mount
and directory it makes carries that prefix; lab_down removes them by exact name
in the fixture finalizer, whatever the tests did.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from typing import Dict, List

import pytest
from ansiblerun import ROOT, VENV_BIN, ansible_env

LAB_NAME = "nnt%s" % secrets.token_hex(2)
STATE_DIR = "/run/nodenet-lab/" + LAB_NAME
NODES = ["%s-node1" % LAB_NAME, "%s-node2" % LAB_NAME]
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def playbook(name: str, inventory_path: str, *extra: str) -> Dict[str, int]:
    """Run playbooks/<name>.yml for our lab; the recap counts for localhost."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name + ".yml")]
    argv += ["-e", "lab_name=" + LAB_NAME, "-e", "lab_inventory_path=" + inventory_path, *extra]
    proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    match = RECAP.search(proc.stdout)
    assert proc.returncode == 0 and match, "%s failed (rc=%d)\n%s\n%s" % (name, proc.returncode, proc.stdout, proc.stderr)
    ok, changed, unreachable, failed = (int(n) for n in match.groups())
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


def on_nodes(inventory_path: str, pattern: str, module: str, args: str) -> Dict[str, dict]:
    """Run one module ad hoc on the lab's nodes; each host's result, read from --tree."""
    tree = tempfile.mkdtemp(prefix="nnt-lab-tree-")
    try:
        argv = [os.path.join(VENV_BIN, "ansible"), "-i", inventory_path, pattern, "-m", module, "-a", args, "--tree", tree]
        proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
        results = {}
        for host in os.listdir(tree):
            with open(os.path.join(tree, host)) as f:
                results[host] = json.load(f)
        assert results, "ansible gave no results (rc=%d)\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)
        return results
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def leftovers() -> List[str]:
    """Everything on the host that carries the lab's prefix."""
    found = []
    if os.path.isdir("/run/netns"):
        found += ["netns " + n for n in os.listdir("/run/netns") if n.startswith(LAB_NAME + "-")]
    if os.path.exists(STATE_DIR):
        found.append("state dir " + STATE_DIR)
    with open("/proc/self/mountinfo") as f:
        found += ["mount " + line.split()[4] for line in f if LAB_NAME in line]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    found += ["root-namespace link " + line for line in links.splitlines() if LAB_NAME in line]
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory_path = str(tmp_path_factory.mktemp("lab") / "lab.yml")
    try:
        first = playbook("lab_up", inventory_path, "-e", "lab_node_count=2")
        yield {"inventory": inventory_path, "first_up": first}
    finally:
        # always, even when lab_up or an assertion failed half-way
        playbook("lab_down", inventory_path)


def test_lab_up_is_idempotent(lab):
    assert lab["first_up"]["changed"] > 0
    assert playbook("lab_up", lab["inventory"], "-e", "lab_node_count=2")["changed"] == 0


def test_inventory_lists_the_nodes_with_their_underlay_addresses(lab):
    results = on_nodes(lab["inventory"], "k8s_nodes", "ansible.builtin.debug", "var=node_address")
    assert {host: r["node_address"] for host, r in results.items()} == {NODES[0]: "172.31.250.1", NODES[1]: "172.31.250.2"}
    assert set(on_nodes(lab["inventory"], "kube_node", "ansible.builtin.debug", "var=inventory_hostname")) == set(NODES)


def test_each_node_has_its_own_hostname(lab):
    results = on_nodes(lab["inventory"], "all", "ansible.builtin.command", "hostname")
    assert {host: r["stdout"] for host, r in results.items()} == {name: name for name in NODES}


def test_cni_paths_are_private_to_each_node(lab):
    marker = "written on node1 by " + LAB_NAME
    copied = on_nodes(lab["inventory"], NODES[0], "ansible.builtin.copy", "dest=/etc/cni/net.d/x content='%s' mode=0644" % marker)
    assert copied[NODES[0]].get("changed"), copied
    back = on_nodes(lab["inventory"], NODES[0], "ansible.builtin.slurp", "src=/etc/cni/net.d/x")
    assert back[NODES[0]]["content"]  # readable where it was written
    other = on_nodes(lab["inventory"], NODES[1], "ansible.builtin.stat", "path=/etc/cni/net.d/x")
    assert other[NODES[1]]["stat"]["exists"] is False
    assert not os.path.exists("/etc/cni/net.d/x") or marker not in open("/etc/cni/net.d/x").read()
    # the standard directories a fresh node has, each node its own
    dirs = on_nodes(lab["inventory"], "all", "ansible.builtin.stat", "path=/opt/cni/bin")
    assert all(r["stat"]["isdir"] for r in dirs.values())


def test_sys_class_net_shows_only_the_nodes_own_devices(lab):
    results = on_nodes(lab["inventory"], "all", "ansible.builtin.command", "ls /sys/class/net")
    assert {host: sorted(r["stdout"].split()) for host, r in results.items()} == {name: ["eth0", "lo"] for name in NODES}


def test_nodes_reach_each_other_over_the_underlay(lab):
    results = on_nodes(lab["inventory"], NODES[0], "ansible.builtin.command", "ping -c 1 -W 2 172.31.250.2")
    assert results[NODES[0]]["rc"] == 0, results


CONNECTION_PLAY = """
- name: The labnode connection, both ways
  hosts: k8s_nodes
  gather_facts: true
  vars:
    node_file: "/etc/nodenet/ünïcödé {{ lookup('env', 'ANSIBLE_PIPELINING') }}"
  tasks:
    - name: Raw command with unicode output
      ansible.builtin.raw: echo 汉语
      register: raw
    - name: Facts describe the node, not the host
      ansible.builtin.assert:
        that:
          - "'汉语' in raw.stdout"
          - ansible_facts.hostname == inventory_hostname
          - ansible_facts.interfaces | sort == ['eth0', 'lo']
    - name: Put a file with a unicode name
      ansible.builtin.copy: {dest: "{{ node_file }}", content: "汉语 {{ inventory_hostname }}", mode: "0600"}
    - name: Put an empty file
      ansible.builtin.copy: {dest: /etc/nodenet/empty, content: "", mode: "0600"}
    - name: Fetch both back
      ansible.builtin.fetch: {src: "{{ item }}", dest: "{{ out_dir }}/{{ inventory_hostname }}{{ item | basename }}", flat: true}
      loop: ["{{ node_file }}", /etc/nodenet/empty]
    - name: What came back is what went
      ansible.builtin.assert:
        that:
          - lookup('file', out_dir ~ '/' ~ inventory_hostname ~ (node_file | basename)) == '汉语 ' ~ inventory_hostname
          - lookup('file', out_dir ~ '/' ~ inventory_hostname ~ 'empty') == ''
    - name: Reconnect
      ansible.builtin.wait_for_connection: {timeout: 10}
"""


@pytest.mark.parametrize("pipelining", ["0", "1"])
def test_connection_runs_commands_and_moves_files_inside_nodes(lab, tmp_path, pipelining):
    play = tmp_path / "connection.yml"
    play.write_text(CONNECTION_PLAY, encoding="utf-8")
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", lab["inventory"], str(play), "-e", "out_dir=" + str(tmp_path)]
    env = dict(ansible_env(), ANSIBLE_PIPELINING=pipelining)
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for node in NODES:
        assert re.search(r"^%s\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0" % node, proc.stdout, re.M), proc.stdout


def test_lab_up_repairs_a_broken_node_and_check_mode_only_reports(lab):
    # break node2 by exact name, inside the lab only: its underlay link, and node1's persisted UTS namespace
    subprocess.run(["ip", "-n", NODES[1], "link", "del", "eth0"], check=True, timeout=30)
    subprocess.run(["umount", os.path.join(STATE_DIR, NODES[0], "uts")], check=True, timeout=30)
    assert playbook("lab_up", lab["inventory"], "-e", "lab_node_count=2", "--check")["changed"] == 1
    assert subprocess.run(["ip", "-n", NODES[1], "link", "show", "eth0"], capture_output=True, timeout=30, check=False).returncode != 0
    assert playbook("lab_up", lab["inventory"], "-e", "lab_node_count=2")["changed"] == 1
    results = on_nodes(lab["inventory"], NODES[0], "ansible.builtin.shell", "hostname && ping -c 1 -W 2 172.31.250.2")
    assert results[NODES[0]]["rc"] == 0 and results[NODES[0]]["stdout_lines"][0] == NODES[0], results
    assert playbook("lab_up", lab["inventory"], "-e", "lab_node_count=2")["changed"] == 0


def test_lab_grows_without_touching_existing_nodes(lab):
    grown = playbook("lab_up", lab["inventory"], "-e", "lab_node_count=3")
    assert grown["changed"] == 2  # node3, and the inventory that now lists it
    results = on_nodes(lab["inventory"], "all", "ansible.builtin.command", "hostname")
    assert sorted(results) == sorted(NODES + ["%s-node3" % LAB_NAME])
    # node1 kept the file written earlier: it was left alone
    assert on_nodes(lab["inventory"], NODES[0], "ansible.builtin.stat", "path=/etc/cni/net.d/x")[NODES[0]]["stat"]["exists"]


def test_lab_down_removes_everything_and_is_idempotent(lab):
    first = playbook("lab_down", lab["inventory"])
    assert first["changed"] > 0
    assert leftovers() == []
    assert not os.path.exists(lab["inventory"])
    again = playbook("lab_down", lab["inventory"])
    assert again["changed"] == 0 and again["failed"] == 0
