# SPDX-License-Identifier: GPL-3.0-or-later
"""Real-node stories on a stock-python lab: a reboot, and leaked leases freed by cni_gc.

A 2-node lab (system python3, no lab sysctls: forwarding must come from the
role) gets site.yml. Runtime crashes are simulated on node2 (a pod's netns
deleted without DEL, a cache entry whose lease is gone, leases nobody
cached, one of them young), then gc.yml in check mode lists exactly what it
would free and why, and the real run frees just that. node1 is rebooted
(lab_reboot.yml): forwarding, the bridge and the pod-subnet routes come back
from the boot steps alone, a new pod reaches a pod on node2 without
site.yml, and cni_gc frees the lease of the pod the reboot killed.

Safety: a unique lab name; lab_down in the finalizer removes everything by name.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from typing import Any, Dict, List

import pytest
from ansiblerun import ROOT, VENV_BIN, ansible_env

LAB = "nnr%s" % secrets.token_hex(2)
STATE = "/run/nodenet-lab/" + LAB
NODE1, NODE2 = LAB + "-node1", LAB + "-node2"
NET = "podnet"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def playbook(name: str, inventory: str, *extra: str, check: bool = False) -> str:
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name + ".yml"), "-i", inventory]
    argv += ["-e", "lab_name=" + LAB, "-e", "lab_inventory_path=" + inventory, *extra]
    if check:
        argv += ["--check", "--diff"]
    proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, "%s failed (rc=%d)\n%s\n%s" % (name, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])
    return proc.stdout


def on_node(inventory: str, node: str, module: str, args: Dict[str, Any], check: bool = False) -> Dict[str, Any]:
    tree = tempfile.mkdtemp(prefix="nnt-reboot-tree-")
    try:
        argv = [os.path.join(VENV_BIN, "ansible"), "-i", inventory, node, "-m", module, "-a", json.dumps(args), "--tree", tree]
        if check:
            argv.append("--check")
        proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
        with open(os.path.join(tree, node)) as f:
            out = json.load(f)
        out.setdefault("failed", proc.returncode != 0)
        return out
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def inside(node: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """A command inside a lab node, as the labnode connection runs it."""
    enter = ["nsenter", "--net=/run/netns/" + node, "--mount=%s/%s/mnt" % (STATE, node), "--uts=%s/%s/uts" % (STATE, node), "--"]
    return subprocess.run(enter + list(argv), capture_output=True, text=True, timeout=60, check=check)


def node_file(node: str, path: str) -> str:
    """Where a file of the node's private paths lives on the host."""
    return os.path.join(STATE, node, "root", path.lstrip("/"))


def leases(node: str) -> List[str]:
    d = node_file(node, "/var/lib/cni/networks/" + NET)
    return sorted(f for f in os.listdir(d) if f[0].isdigit())


def write_lease(node: str, ip: str, container_id: str, age: float) -> None:
    path = node_file(node, "/var/lib/cni/networks/%s/%s" % (NET, ip))
    with open(path, "w") as f:
        f.write("%s\r\neth0" % container_id)
    os.chmod(path, 0o600)
    then = time.time() - age
    os.utime(path, (then, then))


def attach(inventory: str, node: str, name: str) -> str:
    res = on_node(inventory, node, "nodenet.cni.cni_attach", {"name": name})
    assert not res["failed"], res.get("msg")
    return res["result"]["ips"][0]["address"].split("/")[0]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory = str(tmp_path_factory.mktemp("reboot") / "lab.yml")
    try:
        playbook("lab_up", inventory, "-e", "lab_node_count=2", "-e", '{"lab_node_sysctls": {}}')
        with open(inventory) as f:
            assert '"/usr/bin/python3"' in f.read()  # stock nodes
        playbook("site", inventory)
        yield inventory
    finally:
        playbook("lab_down", inventory)


def test_gc_after_simulated_runtime_crashes_frees_exactly_the_leaks(lab):
    crashed = attach(lab, NODE2, "crashed")  # its netns goes without DEL
    lost = attach(lab, NODE2, "lostlease")  # its lease file goes, the cache entry stays
    alive = attach(lab, NODE2, "alive")
    inside(NODE2, "ip", "netns", "delete", "crashed")
    os.unlink(node_file(NODE2, "/var/lib/cni/networks/%s/%s" % (NET, lost)))
    subnet = ipaddress.ip_network(open(node_file(NODE2, "/etc/nodenet/pod_subnet")).read().strip())
    orphan, young = str(subnet.network_address + 200), str(subnet.network_address + 201)
    write_lease(NODE2, orphan, "orphan", age=3600)  # no cache entry, old: a runtime that lost its cache
    write_lease(NODE2, young, "inflight", age=0)  # no cache entry yet: an ADD in flight
    before = leases(NODE2)
    assert {crashed, alive, orphan, young} <= set(before) and lost not in before

    res = on_node(lab, NODE2, "nodenet.cni.cni_gc", {"grace_seconds": 600}, check=True)
    assert res["changed"] and not res["failed"], res
    assert [(a["container_id"], "gone" in a["reason"]) for a in res["deleted_attachments"]] == [("crashed", True)]
    assert sorted((f["ip"], f["container_id"]) for f in res["freed"]) == sorted([(crashed, "crashed"), (orphan, "orphan")])
    assert [(k["ip"], "grace" in k["reason"]) for k in res["kept"]] == [(young, True)]
    assert leases(NODE2) == before  # check mode changed nothing
    assert os.path.exists(node_file(NODE2, "/var/lib/cni/results/%s-crashed-eth0" % NET))

    # the playbook path, check mode first: what, and why
    out = playbook("gc", lab, "--limit", NODE2, "-e", "cni_node_gc_grace_seconds=600", check=True)
    assert "no cached attachment of (podnet, orphan, eth0)" in out and "kept" in out
    assert leases(NODE2) == before

    res = on_node(lab, NODE2, "nodenet.cni.cni_gc", {"grace_seconds": 600})
    assert res["changed"] and not res["failed"], res
    after = leases(NODE2)
    assert set(before) - set(after) == {crashed, orphan}
    assert {alive, young} <= set(after)
    assert not os.path.exists(node_file(NODE2, "/var/lib/cni/results/%s-crashed-eth0" % NET))
    assert os.path.exists(node_file(NODE2, "/var/lib/cni/results/%s-lostlease-eth0" % NET))  # its netns lives
    # the host side of the crashed pod went with its DEL: only the live pods' veths remain
    assert not on_node(lab, NODE2, "nodenet.cni.cni_gc", {"grace_seconds": 600})["changed"]
    # the young lease goes once it is old enough and still nobody's
    write_lease(NODE2, young, "inflight", age=3600)
    res = on_node(lab, NODE2, "nodenet.cni.cni_gc", {"grace_seconds": 600})
    assert [f["ip"] for f in res["freed"]] == [young]
    for name in ("lostlease", "alive"):
        assert not on_node(lab, NODE2, "nodenet.cni.cni_attach", {"name": name, "state": "absent"})["failed"]


def test_a_rebooted_node_has_its_pod_network_back_before_any_pod(lab):
    before_reboot = attach(lab, NODE1, "beforeboot")
    peer = attach(lab, NODE2, "peer")
    routes_before = inside(NODE1, "ip", "route", "show", "proto", "77").stdout
    assert routes_before.strip()
    out = playbook("lab_reboot", lab, "-e", json.dumps({"lab_reboot_nodes": [NODE1], "lab_node_sysctls": {}}))
    assert "nodenet-cni-boot.service: ExecStart" in out and "90-nodenet-cni.conf" in out

    # the kernel state is back from the boot steps alone
    assert inside(NODE1, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    assert inside(NODE1, "ip", "route", "show", "proto", "77").stdout == routes_before
    gateway = open(node_file(NODE1, "/etc/nodenet/boot.json")).read()
    addr = json.loads(gateway)["bridge"]["addresses"][0]
    assert addr in inside(NODE1, "ip", "-o", "addr", "show", "dev", "cni0").stdout
    assert not os.listdir(node_file(NODE1, "/run/netns"))  # /run is a tmpfs: the pod namespaces are gone

    # a new pod reaches the pod on the other node; no site.yml
    attach(lab, NODE1, "afterboot")
    ping = inside(NODE1, "ip", "netns", "exec", "afterboot", "ping", "-c", "2", "-i", "0.2", "-W", "2", peer, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    # the pod the reboot killed left its lease: cni_gc frees it, and only it
    res = on_node(lab, NODE1, "nodenet.cni.cni_gc", {"grace_seconds": 0})
    assert [(f["ip"], f["container_id"]) for f in res["freed"]] == [(before_reboot, "beforeboot")], res
    for node, name in ((NODE1, "afterboot"), (NODE2, "peer")):
        assert not on_node(lab, node, "nodenet.cni.cni_attach", {"name": name, "state": "absent"})["failed"]
