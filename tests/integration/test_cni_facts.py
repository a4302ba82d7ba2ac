# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_facts through `ansible`, on a "node" that is a test network namespace."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from attachrun import NodeDirs, conflist, run_on_node, seed_conf

M = "nodenet.cni.cni_facts"
ATTACH = "nodenet.cni.cni_attach"
ALL_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
GO_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]


@pytest.fixture
def node(netns_factory):
    return netns_factory("fct")


def facts(node, dirs, check=False, **more):
    res = run_on_node(M, dirs.args(**more), node, check=check)
    assert not res["failed"], res.get("msg")
    assert res["changed"] is False
    assert res["ansible_facts"]["cni"] == res["cni"]
    return res["cni"]


def test_plugins_with_their_versions_and_the_ones_that_do_not_answer(node, dirs, go_bin, tmp_path):
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    (broken / "mute").write_text("#!/bin/sh\necho 'not json'\nexit 0\n")
    (broken / "mute").chmod(0o755)
    (broken / "README").write_text("not a plugin\n")  # not executable: not listed
    dirs.bin_dirs = [dirs.bin_dirs[0], go_bin, str(broken), "/nonexistent/bin"]
    for check in (False, True):
        cni = facts(node, dirs, check=check, gather=["plugins"])
        by = {(os.path.basename(p["dir"]), p["name"]): p for p in cni["plugins"]}
        ours = [p for p in cni["plugins"] if p["dir"] == dirs.bin_dirs[0]]
        assert {p["name"] for p in ours} >= {"nodenet-bridge", "nodenet-host-local", "nodenet-loopback", "nodenet-portmap", "bridge"}
        assert all(p["answers"] and p["supportedVersions"] == ALL_VERSIONS for p in ours)
        go = {p["name"]: p for p in cni["plugins"] if p["dir"] == go_bin}
        assert go["bridge"]["supportedVersions"] == GO_VERSIONS and go["host-local"]["supportedVersions"] == GO_VERSIONS
        assert go["bridge"]["shadowed"] and not go["ptp"]["shadowed"], "bridge is found first in our dir"
        mute = by[("broken-bin", "mute")]
        assert not mute["answers"] and "does not answer VERSION" in mute["error"] and mute["path"] in cni["not_answering"]
        assert ("broken-bin", "README") not in by
        assert {"path": "/nonexistent/bin", "exists": False} in cni["bin_dirs"]
        assert set(cni) >= {"plugins", "errors"} and "configs" not in cni and cni["gathered"] == ["plugins"]


def test_active_config_with_two_files_and_with_a_broken_first_one(node, dirs):
    dirs.write("20-b.conflist", conflist("netb", dirs.data_dir, "10.21.0.0/24", bridge="cnib"))
    dirs.write("10-a.conflist", conflist("neta", dirs.data_dir, "10.20.0.0/24", bridge="cnia"))
    cni = facts(node, dirs, gather=["configs"])
    assert [os.path.basename(c["path"]) for c in cni["configs"]] == ["10-a.conflist", "20-b.conflist"]
    assert [c["priority"] for c in cni["configs"]] == [0, 1] and [c["active"] for c in cni["configs"]] == [True, False]
    assert cni["active"]["file"].endswith("/10-a.conflist") and cni["active"]["name"] == "neta" and cni["active"]["valid"]
    assert "first" in cni["active"]["reason"] and "lexical" in cni["active"]["reason"]
    assert all(c["valid"] and c["versions_ok"] and c["findings"] == [] for c in cni["configs"]), cni["configs"]
    assert cni["configs"][0]["bridges"] == ["cnia"] and cni["configs"][0]["data_dirs"] == [dirs.data_dir]

    dirs.write("05-broken.conf", '{"cniVersion": "1.0.0", "name": "broken",')
    cni = facts(node, dirs, gather=["configs"])
    first = cni["configs"][0]
    assert first["path"].endswith("/05-broken.conf") and not first["valid"] and first["error"]
    assert not cni["active"]["valid"] and "containerd fails" in cni["active"]["reason"] and "10-a.conflist" in cni["active"]["reason"]


def test_lint_findings_and_version_support_per_config(node, dirs, go_bin):
    dirs.bin_dirs = [go_bin, dirs.bin_dirs[0]]  # "bridge" is Go's, "nodenet-bridge" ours
    dirs.write("10-seed.conf", seed_conf(dirs.data_dir))  # default route twice (seed.md's note)
    dirs.write("20-go11.conflist", conflist("go11", dirs.data_dir, "10.22.0.0/24", version="1.1.0", bridge_type="bridge", ipam_type="host-local"))
    dirs.write("30-missing.conflist", conflist("missing", dirs.data_dir, "10.13.0.0/24", bridge_type="nosuch-bridge"))
    cni = facts(node, dirs, gather=["configs"])
    seed, go11, missing = cni["configs"]
    assert [f["rule"] for f in seed["findings"]] == ["duplicate-default-route"] and seed["versions_ok"]
    assert {f["rule"] for f in go11["findings"]} == {"version-unsupported"} and not go11["versions_ok"]
    assert [(p["type"], p["supported"]) for p in go11["plugin_support"]] == [("bridge", False), ("host-local", False)]
    assert "does not support cniVersion 1.1.0" in go11["plugin_support"][0]["error"]
    assert "plugin-missing" in {f["rule"] for f in missing["findings"]} and not missing["versions_ok"]
    assert [f["rule"] for f in cni["findings"]] == ["overlapping-networks"], "seed and 'missing' both allocate from 10.13.0.0/22"


def test_leak_detection_finds_the_lease_of_a_namespace_deleted_without_del(node, dirs, probes):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    alive, killed = probes.new(), probes.new()
    ips = {}
    for name in (alive, killed):
        res = run_on_node(ATTACH, dirs.args(name=name), node)
        assert res["changed"], res.get("msg")
        ips[name] = res["result"]["ips"][0]["address"].split("/")[0]
    subprocess.run(["ip", "netns", "delete", killed], check=True)  # the pod went away without DEL
    # a lease nobody's cache knows (a runtime crashed between IPAM and caching, or the cache was wiped)
    ghost = os.path.join(dirs.data_dir, "mynet", "10.13.3.200")
    with open(ghost, "w") as f:
        f.write("ghost-container\r\neth0")

    for check in (False, True):
        cni = facts(node, dirs, check=check)
        assert cni["errors"] == {}, cni["errors"]
        by_ip = {row["ip"]: row for row in cni["leases"]}
        assert set(by_ip) == {ips[alive], ips[killed], "10.13.3.200"}
        assert not by_ip[ips[alive]]["leaked"] and "netns alive" in by_ip[ips[alive]]["reason"]
        assert by_ip[ips[killed]]["leaked"] and "is gone" in by_ip[ips[killed]]["reason"] and by_ip[ips[killed]]["container_id"] == killed
        assert by_ip["10.13.3.200"]["leaked"] and "no cached attachment" in by_ip["10.13.3.200"]["reason"]
        assert sorted(r["ip"] for r in cni["leaked_leases"]) == sorted([ips[killed], "10.13.3.200"])
        assert cni["data_dirs"] == [{"data_dir": dirs.data_dir, "network": "mynet", "configured": True, "exists": True, "leases": 3, "leaked": 2}]
        stale = [a["container_id"] for a in cni["stale_attachments"]]
        assert stale == [killed]
        att = {a["container_id"]: a for a in cni["attachments"]}
        assert att[alive]["netns_alive"] and att[alive]["result"]["ips"][0]["address"] == ips[alive] + "/22"
        [bridge] = cni["bridges"]
        assert bridge["name"] == "cni0" and bridge["exists"] and bridge["addresses"] == ["10.13.3.254/22"] and bridge["networks"] == ["mynet"]

    # DEL cleans the leaked one; the ghost stays leaked until someone removes it
    for name in (alive, killed):
        run_on_node(ATTACH, dirs.args(name=name, state="absent"), node)
    cni = facts(node, dirs, gather=["leases", "attachments"])
    assert [r["ip"] for r in cni["leases"]] == ["10.13.3.200"] and cni["attachments"] == [] and cni["stale_attachments"] == []


def test_leases_of_a_removed_network_are_reported_leaked(node, dirs):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    old = os.path.join(dirs.data_dir, "oldnet")
    os.makedirs(old)
    with open(os.path.join(old, "10.99.0.5"), "w") as f:
        f.write("c1\r\neth0")
    cni = facts(node, dirs, gather=["leases"])
    [row] = cni["leases"]
    assert row["network"] == "oldnet" and row["leaked"]
    assert {"data_dir": dirs.data_dir, "network": "oldnet", "configured": False, "exists": True, "leases": 1, "leaked": 1} in cni["data_dirs"]


def test_owned_routes(node, dirs):
    node.run(["ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"])
    node.run(["ip", "link", "set", "eth9p", "up"])
    node.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "eth9"])
    node.run(["ip", "link", "set", "eth9", "up"])
    node.run(["ip", "route", "add", "10.244.1.0/24", "via", "192.168.77.11", "proto", "77"])
    node.run(["ip", "route", "add", "10.244.2.0/24", "via", "192.168.77.12", "proto", "78"])
    cni = facts(node, dirs, gather=["routes"])
    assert cni["routes"] == {
        "protocol": 77,
        "table": 254,
        "routes": [{"subnet": "10.244.1.0/24", "via": "192.168.77.11", "metric": 0, "route": "10.244.1.0/24 via 192.168.77.11"}],
    }
    assert [r["subnet"] for r in facts(node, dirs, gather=["routes"], route_protocol=78)["routes"]["routes"]] == ["10.244.2.0/24"]


def test_an_empty_node_has_empty_facts(node, tmp_path, cni_bin):
    nobin = tmp_path / "nobin"
    nobin.mkdir()
    # no plugin, only the runtime the module borrows pyroute2/netaddr from (a stock node)
    os.symlink(os.path.join(cni_bin, ".nodenet-cni"), str(nobin / ".nodenet-cni"))
    dirs = NodeDirs(str(tmp_path / "empty"), [str(nobin)])
    cni = facts(node, dirs, conf_dir=str(tmp_path / "no-net.d"))
    assert cni["plugins"] == [] and cni["configs"] == [] and cni["leases"] == [] and cni["attachments"] == [] and cni["bridges"] == []
    assert cni["active"]["file"] == "" and "no .conf" in cni["active"]["reason"] and cni["errors"] == {}


def test_short_name_and_facts_land_in_ansible_facts(node, dirs, tmp_path):
    from ansiblerun import ROOT

    library = os.path.join(ROOT, "library")
    if not os.path.exists(os.path.join(library, "cni_facts.py")):
        library = str(tmp_path / "library")
        os.mkdir(library)
        os.symlink(os.path.join(ROOT, "plugins", "modules", "cni_facts.py"), os.path.join(library, "cni_facts.py"))
    res = run_on_node("cni_facts", dirs.args(gather=["configs"]), node, env={"ANSIBLE_LIBRARY": library})
    assert not res["failed"] and not res["changed"] and "configs" in res["ansible_facts"]["cni"]


@pytest.mark.parametrize(
    "override, option",
    [
        ({"gather": ["plugins", "nope"]}, "gather"),
        ({"route_protocol": 300}, "route_protocol"),
        ({"route_protocol": "abc"}, "route_protocol"),
        ({"route_table": 0}, "route_table"),
        ({"bin_dir": []}, "bin_dir"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_option_fails_naming_it(node, dirs, override, option):
    args = dirs.args()
    args.update(override)
    res = run_on_node(M, args, node)
    assert res["failed"] and option in res["msg"], res.get("msg")
    assert not res.get("changed")


def test_playbook_registers_the_facts(node, dirs, tmp_path):
    """In a play: facts land in ansible_facts.cni, check mode gathers too, never changed."""
    from ansiblerun import ROOT, VENV_BIN, ansible_env

    dirs.write("cni.conf", seed_conf(dirs.data_dir))
    play = tmp_path / "play.yml"
    args = json.dumps(dirs.args())
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - nodenet.cni.cni_facts: %s\n"
        "    - ansible.builtin.assert:\n        that:\n"
        "          - ansible_facts.cni.active.name == 'mynet'\n"
        "          - ansible_facts.cni.configs[0].findings[0].rule == 'duplicate-default-route'\n" % args
    )
    for extra in ([], ["--check"]):
        proc = subprocess.run(
            ["nsenter", "--net=" + node.path, "--", os.path.join(VENV_BIN, "ansible-playbook"), str(play)] + extra,
            cwd=ROOT,
            env=ansible_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "changed=0" in proc.stdout and "failed=0" in proc.stdout
