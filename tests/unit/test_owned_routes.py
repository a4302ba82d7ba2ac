# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_routes' desired state, normalised as the kernel stores it."""

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.owned_routes import parse_routes


def test_ipv6_route_without_metric_is_the_kernels_1024_so_a_rerun_changes_nothing():
    routes = parse_routes([{"subnet": "fd00:10:244:1::/64", "via": "fd00:31:250::2"}, {"subnet": "10.244.1.0/24", "via": "172.31.250.2"}])
    assert [(r.subnet, r.metric) for r in routes] == [("10.244.1.0/24", 0), ("fd00:10:244:1::/64", 1024)]
    assert parse_routes([{"subnet": "fd00::/64", "via": "fd01::1", "metric": 5}])[0].metric == 5
