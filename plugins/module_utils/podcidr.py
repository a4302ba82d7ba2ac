# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-node pod subnets carved from the cluster CIDR, stable forever.

The same job kube-controller-manager does with --allocate-node-cidrs, for
clusters that let the CNI roll-out do it: a node keeps the subnet it has
(persisted on the node), an explicitly set subnet wins, and a new node gets
the lowest free subnet. Nodes are never renumbered because the inventory
changed order or lost a member, and two nodes never share addresses.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple


class SubnetError(ValueError):
    """A clear, operator-facing allocation problem."""


def _net(value: str, what: str):
    from netaddr import AddrFormatError, IPNetwork

    try:
        if "/" not in str(value):
            raise ValueError
        net = IPNetwork(str(value))
    except (AddrFormatError, ValueError, TypeError):
        raise SubnetError("%s %r is not a subnet in CIDR form" % (what, value))
    if net.ip != net.network:
        raise SubnetError("%s %s has host bits set (did you mean %s?)" % (what, value, net.cidr))
    return net


def allocate(cluster_cidr: str, prefix_length: int, nodes: Mapping[str, Mapping[str, Any]]) -> Dict[str, Dict[str, str]]:
    """nodes: name -> {"explicit": subnet or "", "persisted": subnet or ""}.

    Returns name -> {"subnet", "gateway" (first address, CIDR form), "source"
    ("explicit" | "persisted" | "allocated")}. Raises SubnetError.
    """
    cluster = _net(cluster_cidr, "cluster CIDR")
    if not isinstance(prefix_length, int) or not cluster.prefixlen < prefix_length <= (30 if cluster.version == 4 else 126):
        raise SubnetError(
            "node prefix length %r must be longer than the cluster CIDR's /%d and leave room for pods (at most /%d)"
            % (prefix_length, cluster.prefixlen, 30 if cluster.version == 4 else 126)
        )
    taken: List[Tuple[str, Any, str]] = []  # (node, net, source)
    pending: List[str] = []
    for name in sorted(nodes):
        info = nodes[name] or {}
        for source in ("explicit", "persisted"):
            value = info.get(source) or ""
            if value:
                net = _net(value, "pod subnet of %s (%s)" % (name, source))
                if source == "persisted" and net not in cluster:
                    # a persisted subnet outside the cluster CIDR: the CIDR changed under it
                    raise SubnetError(
                        "node %s keeps pod subnet %s, which is outside the cluster CIDR %s; "
                        "set its pod subnet explicitly or reset the node" % (name, net, cluster)
                    )
                taken.append((name, net, source))
                break
        else:
            pending.append(name)
    for i, (a, net_a, _source_a) in enumerate(taken):
        for b, net_b, _source_b in taken[i + 1 :]:
            if net_a.version == net_b.version and net_a.first <= net_b.last and net_b.first <= net_a.last:
                raise SubnetError("nodes %s and %s would share addresses: %s and %s overlap" % (a, b, net_a, net_b))
    result = {name: _entry(net, source) for name, net, source in taken}
    used = [net for _name, net, _source in taken]
    free = _free_subnets(cluster, prefix_length, used)
    for name in pending:
        net = next(free, None)
        if net is None:
            raise SubnetError("cluster CIDR %s has no free /%d left for node %s" % (cluster, prefix_length, name))
        used.append(net)
        result[name] = _entry(net, "allocated")
    return result


def _free_subnets(cluster: Any, prefix_length: int, used: List[Any]):
    for candidate in cluster.subnet(prefix_length):
        if not any(u.first <= candidate.last and candidate.first <= u.last for u in used):
            yield candidate


def _entry(net: Any, source: str) -> Dict[str, str]:
    return {"subnet": str(net), "gateway": "%s/%d" % (net.network + 1, net.prefixlen), "source": source}


def gateway_of(subnet: str) -> Optional[str]:
    return _entry(_net(subnet, "subnet"), "")["gateway"]
