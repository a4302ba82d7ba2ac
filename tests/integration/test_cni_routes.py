# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_routes through `ansible`, on a "node" that is a test network namespace."""

import pytest
from ansiblerun import run_module

OWNED = 77


def routes_by_proto(ns, proto):
    with ns.ipr() as ipr:
        return sorted((r.get_attr("RTA_DST"), r["dst_len"], r.get_attr("RTA_GATEWAY")) for r in ipr.get_routes(family=2) if r["proto"] == proto)


@pytest.fixture
def node(netns_factory, cni_bin):
    ns = netns_factory("rt")
    ns.runtime = cni_bin  # the plugins and their runtime, installed as cni_plugin does
    # a node network for the next hops, inside the test namespace only
    ns.run(["ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"])  # no dummy module here
    ns.run(["ip", "link", "set", "eth9p", "up"])
    ns.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "eth9"])
    ns.run(["ip", "link", "set", "eth9", "up"])
    return ns


TWO = [{"subnet": "10.244.1.0/24", "via": "192.168.77.11"}, {"subnet": "10.244.2.0/24", "via": "192.168.77.12"}]


def test_adds_then_is_idempotent_and_check_mode_predicts(node):
    res = run_module("nodenet.cni.cni_routes", {"routes": TWO}, netns=node.name, bin_dir=node.runtime, check=True, diff=True)
    assert res["changed"] and routes_by_proto(node, OWNED) == []
    assert "+10.244.1.0/24 via 192.168.77.11" in res["_stdout"]  # the rendered --diff
    res = run_module("nodenet.cni.cni_routes", {"routes": TWO}, netns=node.name, bin_dir=node.runtime)
    assert res["changed"] and res["added"] == ["10.244.1.0/24 via 192.168.77.11", "10.244.2.0/24 via 192.168.77.12"]
    assert routes_by_proto(node, OWNED) == [("10.244.1.0", 24, "192.168.77.11"), ("10.244.2.0", 24, "192.168.77.12")]
    res = run_module("nodenet.cni.cni_routes", {"routes": TWO}, netns=node.name, bin_dir=node.runtime)
    assert not res["changed"]
    res = run_module("nodenet.cni.cni_routes", {"routes": TWO}, netns=node.name, bin_dir=node.runtime, check=True)
    assert not res["changed"]


def test_replaces_changed_next_hop_removes_stale_and_keeps_foreign_routes(node):
    node.run(["ip", "route", "add", "10.99.0.0/16", "via", "192.168.77.99"])  # not ours (proto boot)
    run_module("nodenet.cni.cni_routes", {"routes": TWO}, netns=node.name, bin_dir=node.runtime)
    want = [{"subnet": "10.244.1.0/24", "via": "192.168.77.21"}, {"subnet": "10.244.3.0/24", "via": "192.168.77.13"}]
    res = run_module("nodenet.cni.cni_routes", {"routes": want}, netns=node.name, bin_dir=node.runtime, diff=True)
    assert res["replaced"] == ["10.244.1.0/24 via 192.168.77.21"]
    assert res["added"] == ["10.244.3.0/24 via 192.168.77.13"]
    assert res["removed"] == ["10.244.2.0/24 via 192.168.77.12"]
    assert "-10.244.2.0/24 via 192.168.77.12" in res["_stdout"] and "+10.244.3.0/24 via 192.168.77.13" in res["_stdout"]
    assert routes_by_proto(node, OWNED) == [("10.244.1.0", 24, "192.168.77.21"), ("10.244.3.0", 24, "192.168.77.13")]
    assert ("10.99.0.0", 16, "192.168.77.99") in routes_by_proto(node, 3)
    res = run_module("nodenet.cni.cni_routes", {"state": "absent"}, netns=node.name, bin_dir=node.runtime)
    assert res["changed"] and routes_by_proto(node, OWNED) == []
    assert ("10.99.0.0", 16, "192.168.77.99") in routes_by_proto(node, 3)
    assert not run_module("nodenet.cni.cni_routes", {"state": "absent"}, netns=node.name, bin_dir=node.runtime)["changed"]


def test_refuses_to_take_over_a_foreign_route(node):
    node.run(["ip", "route", "add", "10.244.1.0/24", "via", "192.168.77.99"])
    res = run_module("nodenet.cni.cni_routes", {"routes": TWO}, netns=node.name, bin_dir=node.runtime)
    assert res.get("failed") and "10.244.1.0/24" in res["msg"] and "does not own" in res["msg"]
    assert routes_by_proto(node, OWNED) == []


@pytest.mark.parametrize(
    "args, words",
    [
        ({"routes": [{"subnet": "10.244.1.5/24", "via": "192.168.77.11"}]}, "routes[0].subnet"),
        ({"routes": [{"subnet": "banana", "via": "192.168.77.11"}]}, "routes[0].subnet"),
        ({"routes": [{"subnet": "10.244.1.0", "via": "192.168.77.11"}]}, "routes[0].subnet"),
        ({"routes": [{"subnet": "10.244.1.0/24", "via": "nope"}]}, "routes[0].via"),
        ({"routes": [{"subnet": "10.244.1.0/24", "via": "fd00::1"}]}, "routes[0].via"),
        ({"routes": [{"subnet": "10.244.1.0/24", "via": "192.168.77.2"}, {"subnet": "10.244.1.0/24", "via": "192.168.77.3"}]}, "listed twice"),
        ({"routes": [{"subnet": "10.244.1.0/24"}]}, "via"),
        ({"routes": [], "protocol": 3}, "protocol"),
        ({"state": "gone"}, "state"),
        ({"routes": [{"subnet": "10.244.1.0/24", "via": "10.1.1.1"}]}, "directly connected"),
    ],
)
def test_bad_options_fail_naming_them_and_change_nothing(node, args, words):
    res = run_module("nodenet.cni.cni_routes", args, netns=node.name, bin_dir=node.runtime)
    assert res.get("failed"), res
    assert words in res["msg"]
    assert routes_by_proto(node, OWNED) == []
