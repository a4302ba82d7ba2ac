# SPDX-License-Identifier: GPL-3.0-or-later
"""Stable per-node pod subnet allocation."""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.podcidr import SubnetError, allocate


def subnets(result):
    return {n: v["subnet"] for n, v in result.items()}


def test_new_nodes_get_lowest_free_subnets_in_name_order():
    out = allocate("10.244.0.0/16", 24, {"node2": {}, "node1": {}, "node3": {}})
    assert subnets(out) == {"node1": "10.244.0.0/24", "node2": "10.244.1.0/24", "node3": "10.244.2.0/24"}
    assert out["node1"]["gateway"] == "10.244.0.1/24" and out["node1"]["source"] == "allocated"


def test_persisted_subnets_are_kept_when_inventory_shrinks_or_reorders():
    first = allocate("10.244.0.0/16", 24, {"a": {}, "b": {}, "c": {}})
    persisted = {n: {"persisted": v["subnet"]} for n, v in first.items()}
    del persisted["a"]
    persisted["d"] = {}
    out = allocate("10.244.0.0/16", 24, persisted)
    assert out["b"]["subnet"] == first["b"]["subnet"] and out["c"]["subnet"] == first["c"]["subnet"]
    assert out["d"]["subnet"] == "10.244.0.0/24"  # a's old subnet is free again
    assert out["b"]["source"] == "persisted"


def test_explicit_wins_and_new_nodes_avoid_it():
    out = allocate("10.244.0.0/16", 24, {"a": {"explicit": "10.244.0.0/24", "persisted": "10.244.9.0/24"}, "b": {}})
    assert subnets(out) == {"a": "10.244.0.0/24", "b": "10.244.1.0/24"}
    assert out["a"]["source"] == "explicit"


@pytest.mark.parametrize(
    "cidr, prefix, nodes, words",
    [
        ("10.244.0.0/16", 24, {"a": {"explicit": "10.244.1.0/24"}, "b": {"persisted": "10.244.1.128/25"}}, "a and b"),
        ("10.244.0.0/16", 24, {"a": {"persisted": "10.99.0.0/24"}}, "outside the cluster CIDR"),
        ("10.244.0.0/30", 31, {}, "prefix length"),
        ("10.244.0.0/23", 24, {"a": {}, "b": {}, "c": {}}, "no free /24 left for node c"),
        ("10.244.0.1/16", 24, {}, "host bits"),
        ("nonsense", 24, {}, "CIDR"),
        ("10.244.0.0/16", 16, {}, "prefix length"),
        ("10.244.0.0/16", 24, {"a": {"explicit": "10.244.1.5/24"}}, "host bits"),
    ],
)
def test_errors_are_clear(cidr, prefix, nodes, words):
    with pytest.raises(SubnetError) as e:
        allocate(cidr, prefix, nodes)
    assert words in str(e.value)


def test_ipv6_cluster():
    out = allocate("fd00:10:244::/56", 64, {"n1": {}, "n2": {}})
    assert subnets(out) == {"n1": "fd00:10:244::/64", "n2": "fd00:10:244:1::/64"}
    assert out["n1"]["gateway"] == "fd00:10:244::1/64"
