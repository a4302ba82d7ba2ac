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

from typing import Any, Dict, List, Mapping, Tuple


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


# ---------------------------------------------------------------------------
# Dual-stack: one cluster CIDR per family, like kube-controller-manager's
# --cluster-cidr=10.244.0.0/16,fd00:10:244::/56 with --node-cidr-mask-size-ipv4/-ipv6.

FAMILIES = {4: "IPv4", 6: "IPv6"}


def split_list(value: Any, what: str) -> List[str]:
    """A list, or a string separated by commas, blanks or newlines (how the
    flag, the inventory and the persisted file write them)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, (list, tuple)):
        out: List[str] = []
        for item in value:
            out.extend(split_list(item, what))
        return out
    raise SubnetError("%s must be a CIDR, a comma-separated string or a list, got %r" % (what, value))


def cluster_cidrs(value: Any) -> List[Any]:
    """The cluster CIDRs in the order given (the first is the primary family),
    at most one per family."""
    nets = [_net(cidr, "cluster CIDR") for cidr in split_list(value, "cluster CIDR")]
    if not nets:
        raise SubnetError("cluster CIDR is empty; give one CIDR per family, e.g. 10.244.0.0/16,fd00:10:244::/56")
    seen: Dict[int, Any] = {}
    for net in nets:
        if net.version in seen:
            raise SubnetError(
                "cluster CIDR has two %s CIDRs (%s and %s); give at most one per family" % (FAMILIES[net.version], seen[net.version], net)
            )
        seen[net.version] = net
    return nets


def _by_family(value: Any, what: str) -> Dict[int, str]:
    out: Dict[int, str] = {}
    for cidr in split_list(value, what):
        net = _net(cidr, what)
        if net.version in out:
            raise SubnetError("%s has two %s subnets (%s and %s)" % (what, FAMILIES[net.version], out[net.version], cidr))
        out[net.version] = cidr
    return out


def allocate_families(
    cluster_cidr: Any, prefix_lengths: Mapping[int, int], nodes: Mapping[str, Mapping[str, Any]]
) -> Dict[str, Dict[str, Any]]:
    """nodes: name -> {"explicit", "persisted"}, each one subnet per family (a
    list or a separated string; "" = unset).

    Returns name -> {"subnets": [...], "gateways": [...], "sources": [...]}
    in the cluster CIDRs' order, plus "subnet"/"gateway"/"source" of the
    primary family. A family added to the cluster later is allocated next to
    the subnets nodes keep; a persisted subnet of a family the cluster no
    longer has is dropped.
    """
    clusters = cluster_cidrs(cluster_cidr)
    families = [net.version for net in clusters]
    per_node: Dict[str, Dict[str, Dict[int, str]]] = {}
    for name in sorted(nodes):
        info = nodes[name] or {}
        explicit = _by_family(info.get("explicit"), "pod subnet of %s (explicit)" % name)
        for version in explicit:
            if version not in families:
                raise SubnetError(
                    "pod subnet of %s (explicit) %s is %s, but the cluster CIDR has no %s CIDR"
                    % (name, explicit[version], FAMILIES[version], FAMILIES[version])
                )
        per_node[name] = {"explicit": explicit, "persisted": _by_family(info.get("persisted"), "pod subnet of %s (persisted)" % name)}
    result: Dict[str, Dict[str, Any]] = {name: {"subnets": [], "gateways": [], "sources": []} for name in per_node}
    for cluster in clusters:
        prefix = prefix_lengths.get(cluster.version)
        requests = {
            name: {source: per_node[name][source].get(cluster.version, "") for source in ("explicit", "persisted")} for name in per_node
        }
        for name, entry in allocate(str(cluster), int(prefix) if prefix is not None else -1, requests).items():
            result[name]["subnets"].append(entry["subnet"])
            result[name]["gateways"].append(entry["gateway"])
            result[name]["sources"].append(entry["source"])
    for entry in result.values():
        entry.update(subnet=entry["subnets"][0], gateway=entry["gateways"][0], source=entry["sources"][0])
    return result
