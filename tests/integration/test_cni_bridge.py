# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_bridge through `ansible`, on a "node" that is a test network namespace."""

import pytest
from ansiblerun import run_module

M = "nodenet.cni.cni_bridge"


def bridge(ns, name="cni0"):
    with ns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            return None
        link = ipr.get_links(idx[0])[0]
        addrs = sorted("%s/%d" % (a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx[0]) if a["scope"] == 0)
        kind = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND")
        return {"kind": kind, "up": bool(link["flags"] & 1), "mtu": link.get_attr("IFLA_MTU"), "addresses": addrs,
                "promisc": bool(link["flags"] & 0x100)}


def sysctl(ns, key):
    return ns.run(["cat", "/proc/sys/" + key]).stdout.decode().strip()


@pytest.fixture
def node(netns_factory, cni_bin):
    ns = netns_factory("br")
    ns.runtime = cni_bin  # the plugins and their runtime, installed as cni_plugin does
    return ns


def test_creates_bridge_idempotently_with_check_and_diff(node):
    args = {"name": "cni0", "addresses": ["10.244.1.1/24", "fd00:244:1::1/64"], "mtu": 1400}
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime, check=True, diff=True)
    assert res["changed"] and bridge(node) is None, "check mode must not create the bridge"
    assert '"exists": false' in res["_stdout"] or "exists" in res["_stdout"]
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime, diff=True)
    assert res["changed"]
    br = bridge(node)
    assert br["kind"] == "bridge" and br["up"] and br["mtu"] == 1400
    assert br["addresses"] == ["10.244.1.1/24", "fd00:244:1::1/64"]
    assert sysctl(node, "net/ipv4/ip_forward") == "1" and sysctl(node, "net/ipv6/conf/all/forwarding") == "1"
    assert res["bridge"]["addresses"] == ["10.244.1.1/24", "fd00:244:1::1/64"]
    assert not run_module(M, args, netns=node.name, bin_dir=node.runtime)["changed"]
    assert not run_module(M, args, netns=node.name, bin_dir=node.runtime, check=True)["changed"]


def test_drift_is_repaired_and_conflicting_address_needs_force(node):
    run_module(M, {"addresses": ["10.244.1.1/24"]}, netns=node.name, bin_dir=node.runtime)
    node.run(["ip", "link", "set", "cni0", "down"])
    node.run(["ip", "link", "set", "cni0", "mtu", "1300"])
    res = run_module(M, {"addresses": ["10.244.1.1/24"], "mtu": 1500}, netns=node.name, bin_dir=node.runtime, diff=True)
    assert res["changed"] and bridge(node)["up"] and bridge(node)["mtu"] == 1500
    res = run_module(M, {"addresses": ["10.244.7.1/24"]}, netns=node.name, bin_dir=node.runtime)
    assert res["failed"] and "10.244.1.1/24" in res["msg"] and "force_address" in res["msg"]
    assert bridge(node)["addresses"] == ["10.244.1.1/24"]
    res = run_module(M, {"addresses": ["10.244.7.1/24"], "force_address": True}, netns=node.name, bin_dir=node.runtime, check=True)
    assert res["changed"] and bridge(node)["addresses"] == ["10.244.1.1/24"]
    res = run_module(M, {"addresses": ["10.244.7.1/24"], "force_address": True}, netns=node.name, bin_dir=node.runtime)
    assert res["changed"] and bridge(node)["addresses"] == ["10.244.7.1/24"]


def test_state_absent_removes_and_refuses_non_bridge(node):
    run_module(M, {}, netns=node.name, bin_dir=node.runtime)
    assert bridge(node) is not None
    assert run_module(M, {"state": "absent"}, netns=node.name, bin_dir=node.runtime, check=True)["changed"] and bridge(node) is not None
    assert run_module(M, {"state": "absent"}, netns=node.name, bin_dir=node.runtime)["changed"] and bridge(node) is None
    assert not run_module(M, {"state": "absent"}, netns=node.name, bin_dir=node.runtime)["changed"]
    node.run(["ip", "link", "add", "cni0", "type", "veth", "peer", "name", "cni0p"])
    res = run_module(M, {}, netns=node.name, bin_dir=node.runtime)
    assert res["failed"] and "not a bridge" in res["msg"]
    res = run_module(M, {"state": "absent"}, netns=node.name, bin_dir=node.runtime)
    assert res["failed"] and "not a bridge" in res["msg"]


@pytest.mark.parametrize(
    "args, words",
    [
        ({"name": "a-very-long-bridge-name"}, "name"),
        ({"name": "br/0"}, "name"),
        ({"addresses": ["10.244.1.0"]}, "addresses[0]"),
        ({"addresses": ["10.244.1.0/24"]}, "network address"),
        ({"addresses": ["nonsense/24"]}, "addresses[0]"),
        ({"addresses": ["10.244.1.1/24", "10.245.1.1/24"]}, "more than one IPv4"),
        ({"mtu": 20}, "mtu"),
        ({"state": "down"}, "state"),
        ({"promisc": "maybe"}, "promisc"),
    ],
)
def test_bad_options_fail_naming_them_and_change_nothing(node, args, words):
    res = run_module(M, args, netns=node.name, bin_dir=node.runtime)
    assert res["failed"] and words in res["msg"], res
    assert bridge(node, args.get("name", "cni0") if "/" not in args.get("name", "") else "cni0") is None
