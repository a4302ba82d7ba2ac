# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Routes through pyroute2, in the CNI result's own terms (spec.Route).

Used by the bridge for container routes and CHECK, and meant for anything
else that manages routes as a set (pod-subnet routes between nodes):
`list_routes` reads them back in the same shape `add_route` takes, so a
caller can diff desired against present and add/delete the difference.
"""

from __future__ import annotations

import errno
import socket
from typing import Any, List, Optional

from ..spec import Route
from .link import netlink_op

MAIN_TABLE = 254
RTN_UNICAST = 1
RTPROT_BOOT = 3  # what `ip route add` and the Go netlink library use


def _network(dst: str):
    from netaddr import IPNetwork

    return IPNetwork(dst).cidr  # host bits dropped: "10.1.2.3/24" means 10.1.2.0/24


def _request(route: Route, oif: int = 0, gateway: Optional[str] = None) -> dict:
    net = _network(route.dst)
    spec = {
        "family": socket.AF_INET if net.version == 4 else socket.AF_INET6,
        "dst": str(net.network),
        "dst_len": net.prefixlen,
        "table": route.table if route.table is not None else MAIN_TABLE,
        "proto": RTPROT_BOOT,
        "type": RTN_UNICAST,
    }
    gw = route.gw if gateway is None else gateway
    if gw:
        spec["gateway"] = gw
    if oif:
        spec["oif"] = oif
    if route.priority:
        spec["priority"] = route.priority
    if route.scope is not None:
        spec["scope"] = route.scope
    metrics = {}
    if route.mtu:
        metrics["RTAX_MTU"] = route.mtu
    if route.advmss:
        metrics["RTAX_ADVMSS"] = route.advmss
    if metrics:
        spec["metrics"] = metrics
    return spec


def add_route(ipr: Any, route: Route, oif: int = 0, gateway: Optional[str] = None, exist_ok: bool = False) -> None:
    """Add `route` (via `gateway` if given, else route.gw) out of ifindex `oif`."""
    spec = _request(route, oif, gateway)
    shown = route.dst + (" via " + spec["gateway"] if spec.get("gateway") else "")
    with netlink_op("add route %s" % shown, ignore=(errno.EEXIST,) if exist_ok else ()):
        ipr.route("add", **spec)


def list_routes(ipr: Any, family: int = 0, table: int = MAIN_TABLE, oif: int = 0) -> List[Route]:
    """Unicast routes of a table as spec.Route (dst always in CIDR form), optionally only out of `oif`.

    A multipath route appears once per next hop.
    """
    fams = {4: (socket.AF_INET,), 6: (socket.AF_INET6,)}.get(family, (socket.AF_INET, socket.AF_INET6))
    out: List[Route] = []
    for fam in fams:
        for msg in ipr.get_routes(family=fam):
            if msg["type"] != RTN_UNICAST:
                continue
            msg_table = msg.get_attr("RTA_TABLE") or msg["table"]
            if table and msg_table != table:
                continue
            dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if fam == socket.AF_INET else "::")
            base = "%s/%d" % (dst, msg["dst_len"])
            hops = [(msg.get_attr("RTA_GATEWAY") or "", msg.get_attr("RTA_OIF") or 0)]
            multipath = msg.get_attr("RTA_MULTIPATH")
            if multipath:
                hops = [(nh.get_attr("RTA_GATEWAY") or "", nh["oif"]) for nh in multipath]
            for gw, hop_oif in hops:
                if oif and hop_oif != oif:
                    continue
                out.append(Route(dst=base, gw=gw, priority=msg.get_attr("RTA_PRIORITY") or 0, table=msg_table, scope=msg["scope"]))
    return out


def same_destination(a: Route, b: Route) -> bool:
    return _network(a.dst) == _network(b.dst)


def find_route(routes: List[Route], want: Route) -> Optional[Route]:
    """The first of `routes` to want.dst, via want.gw when it names one."""
    from netaddr import IPAddress

    for have in routes:
        if not same_destination(have, want):
            continue
        if want.gw and (not have.gw or IPAddress(have.gw) != IPAddress(want.gw)):
            continue
        return have
    return None
