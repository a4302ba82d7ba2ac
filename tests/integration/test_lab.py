# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab: lab_up / lab_down through ansible-playbook, nodes used through the labnode connection.

Safety: the lab gets a unique name (nnt<hex>), so every namespace, link, mount
and directory it makes carries that prefix; lab_down removes them by exact name
in the fixture finalizer, whatever the tests did.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from typing import Dict, List

import pytest
from ansiblerun import ansible_env
from labrun import ad_hoc, lab_leftovers, lab_playbook, lab_up_down, run_connection_play

LAB_NAME = "nnt%s" % secrets.token_hex(2)
STATE_DIR = "/run/nodenet-lab/" + LAB_NAME
NODES = ["%s-node1" % LAB_NAME, "%s-node2" % LAB_NAME]


def playbook(name: str, inventory_path: str, *extra: str) -> Dict[str, int]:
    """Run playbooks/<name>.yml for our lab; the recap counts for localhost."""
    return lab_playbook(name, LAB_NAME, inventory_path, *extra)


def on_nodes(inventory_path: str, pattern: str, module: str, args: str) -> Dict[str, dict]:
    """Run one module ad hoc on the lab's nodes; each host's result."""
    return ad_hoc(inventory_path, pattern, module, args)


def leftovers() -> List[str]:
    """Everything on the host that carries the lab's prefix."""
    found = lab_leftovers(LAB_NAME, STATE_DIR)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    found += ["root-namespace link " + line for line in links.splitlines() if LAB_NAME in line]
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory_path = str(tmp_path_factory.mktemp("lab") / "lab.yml")
    with lab_up_down(playbook, inventory_path) as first:
        yield {"inventory": inventory_path, "first_up": first}


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


@pytest.mark.parametrize("pipelining", ["0", "1"])
def test_connection_runs_commands_and_moves_files_inside_nodes(lab, tmp_path, pipelining):
    run_connection_play(lab["inventory"], NODES, tmp_path, dict(ansible_env(), ANSIBLE_PIPELINING=pipelining))


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
