# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_facts' pure parts: the leak rule, stale attachments, lease sources,
the active-config explanation, `gather` subsets. No root, no netlink."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import Lease
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.cache import CacheEntry, write_entry
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.confdir import parse_conf_list, scan
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.facts import (
    FactsRequest,
    active_report,
    attachment_report,
    classify_leases,
    gather,
    lease_sources,
    subsets,
)

LIVE = "/live/netns"
DEAD = "/dead/netns"


def alive(path: str) -> bool:
    return path == LIVE


def entry(cid: str, ifname: str = "eth0", network: str = "mynet", netns: str = LIVE) -> CacheEntry:
    result = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}
    return CacheEntry(
        container_id=cid, network_name=network, ifname=ifname, netns=netns, result=result, path="/cache/results/%s-%s-%s" % (network, cid, ifname)
    )


def lease(ip: str, cid: str, ifname: str = "eth0") -> Lease:
    return Lease(ip=ip, container_id=cid, ifname=ifname, path="/data/mynet/" + ip)


def classify(leases, entries):
    return {row["ip"]: row for row in classify_leases([("/data", "mynet", lease) for lease in leases], entries, alive)}


def test_lease_with_a_live_cached_attachment_is_held():
    rows = classify([lease("10.0.0.2", "c1")], [entry("c1")])
    assert not rows["10.0.0.2"]["leaked"] and "netns alive" in rows["10.0.0.2"]["reason"]
    assert rows["10.0.0.2"]["attachment"] == "/cache/results/mynet-c1-eth0" and rows["10.0.0.2"]["netns"] == LIVE


def test_lease_whose_netns_is_gone_is_leaked():
    rows = classify([lease("10.0.0.2", "c1")], [entry("c1", netns=DEAD)])
    assert rows["10.0.0.2"]["leaked"] and "netns /dead/netns" in rows["10.0.0.2"]["reason"] and "gone" in rows["10.0.0.2"]["reason"]


def test_lease_without_a_cached_attachment_is_leaked():
    rows = classify([lease("10.0.0.2", "c1")], [])
    assert rows["10.0.0.2"]["leaked"] and "no cached attachment of (mynet, c1, eth0)" in rows["10.0.0.2"]["reason"]


@pytest.mark.parametrize(
    "other",
    [entry("c1", ifname="eth1"), entry("c1", network="othernet"), entry("c2")],
    ids=["other-ifname", "other-network", "other-container"],
)
def test_only_the_same_network_container_and_ifname_hold_a_lease(other):
    assert classify([lease("10.0.0.2", "c1")], [other])["10.0.0.2"]["leaked"]


def test_legacy_id_only_lease_is_held_by_any_ifname_of_the_container():
    rows = classify([lease("10.0.0.2", "c1", ifname="")], [entry("c1", ifname="net1")])
    assert not rows["10.0.0.2"]["leaked"]
    assert classify([lease("10.0.0.2", "c1", ifname="")], [])["10.0.0.2"]["reason"].endswith("any ifname)")


def test_attachment_without_netns_counts_as_held():
    rows = classify([lease("10.0.0.2", "c1")], [entry("c1", netns="")])
    assert not rows["10.0.0.2"]["leaked"] and "no netns recorded" in rows["10.0.0.2"]["reason"]


def test_stale_attachments_are_those_whose_netns_is_gone():
    rows = attachment_report([entry("c1"), entry("c2", netns=DEAD), entry("c3", netns="")], {"mynet"}, alive)
    assert [(r["container_id"], r["netns_alive"], r["stale"]) for r in rows] == [("c1", True, False), ("c2", False, True), ("c3", False, False)]
    assert rows[0]["ips"] == ["10.0.0.2/24"] and rows[0]["configured"]
    assert not attachment_report([entry("c1", network="gone")], {"mynet"}, alive)[0]["configured"]


def _net(name: str, data_dir: str):
    conf = {"cniVersion": "1.0.0", "name": name, "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "dataDir": data_dir, "subnet": "10.1.0.0/24"}}]}
    return parse_conf_list(json.dumps(conf).encode(), name + ".conflist")


def test_lease_sources_include_unconfigured_networks_in_a_referenced_data_dir(tmp_path):
    data = tmp_path / "data"
    (data / "oldnet").mkdir(parents=True)
    (data / "notes.txt").write_text("x")
    rows = lease_sources([_net("mynet", str(data))])
    assert rows == [
        {"data_dir": str(data), "network": "mynet", "configured": True, "exists": False},
        {"data_dir": str(data), "network": "oldnet", "configured": False, "exists": True},
    ]


def test_active_report_explains_the_choice(tmp_path):
    d = tmp_path / "net.d"
    d.mkdir()
    assert "no .conf" in active_report(str(d), scan(str(d)))["reason"]
    (d / "20-b.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "b", "plugins": [{"type": "bridge"}]}))
    (d / "10-a.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "bridge"}]}))
    report = active_report(str(d), scan(str(d)))
    assert report["name"] == "a" and report["valid"] and "first" in report["reason"]
    (d / "00-bad.conf").write_text("{")
    report = active_report(str(d), scan(str(d)))
    assert not report["valid"] and report["file"].endswith("00-bad.conf")
    assert "containerd fails" in report["reason"] and "CRI-O" in report["reason"] and "10-a.conflist" in report["reason"]


def test_gather_subsets():
    assert subsets(["all"]) == subsets([]) == {"plugins", "configs", "bridges", "routes", "leases", "attachments"}
    assert subsets(["leases", "plugins"]) == {"leases", "plugins"}


def test_gather_offline_parts_from_temp_dirs(tmp_path):
    """configs, leases and attachments need no root and no netlink."""
    data = tmp_path / "data"
    (data / "mynet").mkdir(parents=True)
    (data / "mynet" / "10.1.0.2").write_text("c1\r\neth0")
    (data / "mynet" / "10.1.0.3").write_text("c2\r\neth0")
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    (conf_dir / "10-mynet.conflist").write_text(_net("mynet", str(data)).bytes.decode())
    cache = str(tmp_path / "cache")
    write_entry(cache, CacheEntry(container_id="c1", network_name="mynet", ifname="eth0", netns="/proc/self/ns/net", result={"cniVersion": "1.0.0"}))
    write_entry(cache, CacheEntry(container_id="c2", network_name="mynet", ifname="eth0", netns=str(tmp_path / "gone")))
    req = FactsRequest(conf_dir=str(conf_dir), bin_dirs=[str(tmp_path / "bin")], cache_dir=cache, gather={"configs", "leases", "attachments"})
    cni = gather(req)
    assert cni["errors"] == {} and cni["gathered"] == ["configs", "leases", "attachments"]
    assert cni["active"]["name"] == "mynet" and "plugin-missing" in {f["rule"] for f in cni["configs"][0]["findings"]}
    assert [(r["ip"], r["leaked"]) for r in cni["leases"]] == [("10.1.0.2", False), ("10.1.0.3", True)]
    assert [a["container_id"] for a in cni["stale_attachments"]] == ["c2"]
    assert "plugins" not in cni and "bridges" not in cni and "routes" not in cni
    assert os.path.isdir(cache)
