# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pod-subnet routes to other nodes, managed as an exact set.

Routes we make carry our own routing protocol number (rtm_protocol), so
"the routes we own" is a kernel fact, not a file we keep: we read them
back by protocol, add what is missing, replace what changed, delete what
is no longer wanted, and never touch a route with another protocol.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..spec import ERR_INTERNAL, ERR_INVALID_NETCONF, CNIError
from .part import PartFailed

# Not in /etc/iproute2/rt_protos and not used by common routing daemons
# (bird 12, zebra 11, bgp 186, isis 187, ospf 188, rip 189, eigrp 192).
DEFAULT_PROTOCOL = 77
MAIN_TABLE = 254

# cni_routes' options (bin_dir aside); also cni_node_state's O(routes)
ARGUMENT_SPEC = dict(
    routes=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(subnet=dict(type="str", required=True), via=dict(type="str", required=True), metric=dict(type="int", default=0)),
    ),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    exclusive=dict(type="bool", default=True),
    protocol=dict(type="int", default=DEFAULT_PROTOCOL),
    table=dict(type="int", default=MAIN_TABLE),
)
RTN_UNICAST = 1


@dataclass(frozen=True, order=True)
class PodRoute:
    """One desired route: a node's pod subnet via that node's address."""

    subnet: str  # canonical CIDR, host bits cleared
    via: str
    metric: int = 0

    def describe(self) -> str:
        return "%s via %s" % (self.subnet, self.via) + (" metric %d" % self.metric if self.metric else "")


@dataclass
class RoutePlan:
    add: List[PodRoute] = field(default_factory=list)
    replace: List[PodRoute] = field(default_factory=list)  # same subnet+metric, new next hop
    remove: List[PodRoute] = field(default_factory=list)
    keep: List[PodRoute] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.add or self.replace or self.remove)

    def predicted(self) -> List[PodRoute]:
        """The owned routes once the plan is applied."""
        return sorted(self.keep + self.add + self.replace)


IP6_RT_PRIO_USER = 1024  # include/uapi/linux/ipv6_route.h


def check_owner(protocol: int, table: int) -> None:
    """The protocol number that marks our routes and the table they live in; errors name the option."""
    if not 5 <= protocol <= 255:
        raise CNIError(ERR_INVALID_NETCONF, "protocol must be between 5 and 255 (0-4 belong to the kernel and standard tools), got %d" % protocol)
    if not 1 <= table <= 0xFFFFFFFF:
        raise CNIError(ERR_INVALID_NETCONF, "table must be a routing table number, got %d" % table)


def parse_routes(items: Sequence[Dict[str, Any]], option: str = "routes") -> List[PodRoute]:
    """Validate and normalise; every error names the entry and field."""
    from netaddr import AddrFormatError, IPAddress, IPNetwork

    out: List[PodRoute] = []
    seen: Dict[tuple, int] = {}
    for i, item in enumerate(items):
        where = "%s[%d]" % (option, i)
        if not isinstance(item, dict):
            raise CNIError(ERR_INVALID_NETCONF, "%s must be a dict with subnet and via" % where)
        try:
            net = IPNetwork(str(item.get("subnet", "")))
            if "/" not in str(item.get("subnet", "")):
                raise ValueError
        except (AddrFormatError, ValueError, TypeError):
            raise CNIError(ERR_INVALID_NETCONF, "%s.subnet %r is not a CIDR subnet" % (where, item.get("subnet")))
        if net.ip != net.network:
            raise CNIError(ERR_INVALID_NETCONF, "%s.subnet %s has host bits set; did you mean %s?" % (where, net, net.cidr))
        try:
            via = IPAddress(str(item.get("via", "")))
        except (AddrFormatError, ValueError, TypeError):
            raise CNIError(ERR_INVALID_NETCONF, "%s.via %r is not an IP address" % (where, item.get("via")))
        if via.version != net.version:
            raise CNIError(ERR_INVALID_NETCONF, "%s.via %s is not of the same address family as subnet %s" % (where, via, net))
        metric = item.get("metric") or 0
        if not isinstance(metric, int) or isinstance(metric, bool) or metric < 0:
            raise CNIError(ERR_INVALID_NETCONF, "%s.metric must be a non-negative integer" % where)
        if net.version == 6 and metric == 0:
            metric = IP6_RT_PRIO_USER  # the kernel stores an IPv6 route without a metric as 1024
        route = PodRoute(subnet=str(net.cidr), via=str(via), metric=metric)
        key = (route.subnet, route.metric)
        if key in seen:
            raise CNIError(ERR_INVALID_NETCONF, "%s.subnet %s is listed twice (also %s[%d])" % (where, route.subnet, option, seen[key]))
        seen[key] = i
        out.append(route)
    return sorted(out)


def _dump(ipr: Any, table: int) -> List[Any]:
    msgs = []
    for fam in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=fam):
            if msg["type"] == RTN_UNICAST and (msg.get_attr("RTA_TABLE") or msg["table"]) == table:
                msgs.append(msg)
    return msgs


def _as_route(msg: Any) -> PodRoute:
    fam = msg["family"]
    dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if fam == socket.AF_INET else "::")
    return PodRoute(subnet="%s/%d" % (dst, msg["dst_len"]), via=msg.get_attr("RTA_GATEWAY") or "", metric=msg.get_attr("RTA_PRIORITY") or 0)


def read_owned(ipr: Any, protocol: int = DEFAULT_PROTOCOL, table: int = MAIN_TABLE) -> List[PodRoute]:
    return sorted(_as_route(m) for m in _dump(ipr, table) if m["proto"] == protocol)


def foreign_conflicts(ipr: Any, wanted: Sequence[PodRoute], protocol: int, table: int) -> List[str]:
    """Desired routes whose (subnet, metric) is already taken by a route we did not make."""
    taken = {}
    for msg in _dump(ipr, table):
        if msg["proto"] != protocol:
            r = _as_route(msg)
            taken[(r.subnet, r.metric)] = msg["proto"]
    return ["%s (held by a route with protocol %d)" % (w.describe(), taken[(w.subnet, w.metric)]) for w in wanted if (w.subnet, w.metric) in taken]


def plan_routes(current: Sequence[PodRoute], desired: Sequence[PodRoute], exclusive: bool = True) -> RoutePlan:
    plan = RoutePlan()
    have = {(r.subnet, r.metric): r for r in current}
    want = {(r.subnet, r.metric): r for r in desired}
    for key, route in sorted(want.items()):
        if key not in have:
            plan.add.append(route)
        elif have[key].via != route.via:
            plan.replace.append(route)
        else:
            plan.keep.append(route)
    if exclusive:
        plan.remove = [r for key, r in sorted(have.items()) if key not in want]
    return plan


def plan_absent(current: Sequence[PodRoute], listed: Sequence[PodRoute]) -> RoutePlan:
    """state=absent: the listed subnets (any next hop or metric) go, or every owned route when none is listed."""
    gone = {r.subnet for r in listed}
    remove = [r for r in current if not gone or r.subnet in gone]
    return RoutePlan(remove=remove, keep=[r for r in current if r not in remove])


def describe_all(routes: Sequence[PodRoute]) -> str:
    """One route per line, for a diff."""
    return "".join(r.describe() + "\n" for r in routes)


def _request(route: PodRoute, protocol: int, table: int) -> Dict[str, Any]:
    from netaddr import IPNetwork

    net = IPNetwork(route.subnet)
    spec: Dict[str, Any] = {
        "family": socket.AF_INET if net.version == 4 else socket.AF_INET6,
        "dst": str(net.network),
        "dst_len": net.prefixlen,
        "table": table,
        "proto": protocol,
        "type": RTN_UNICAST,
    }
    if route.via:
        spec["gateway"] = route.via
    if route.metric:
        spec["priority"] = route.metric
    return spec


def apply_plan(ipr: Any, plan: RoutePlan, protocol: int = DEFAULT_PROTOCOL, table: int = MAIN_TABLE) -> None:
    from pyroute2.netlink.exceptions import NetlinkError

    def run(verb: str, route: PodRoute, tolerate: Optional[int] = None) -> None:
        try:
            ipr.route(verb, **_request(route, protocol, table))
        except NetlinkError as e:
            if tolerate is not None and e.code == tolerate:
                return
            hint = " (is %s on a directly connected network?)" % route.via if e.code == errno.ENETUNREACH else ""
            raise CNIError(ERR_INTERNAL, "cannot %s route %s: %s%s" % (verb, route.describe(), e.args[-1] if e.args else e, hint))

    for route in plan.remove:
        run("del", route, tolerate=errno.ESRCH)
    for route in plan.replace:
        run("replace", route)
    for route in plan.add:
        run("add", route)


def desired_from_params(p: Mapping[str, Any]) -> List[PodRoute]:
    """cni_routes' options checked: the listed routes; a CNIError naming the option when one is invalid."""
    check_owner(p["protocol"], p["table"])
    return parse_routes(p["routes"])


def reconcile(ipr: Any, desired: Sequence[PodRoute], p: Mapping[str, Any], check_mode: bool, want_diff: bool) -> Dict[str, Any]:
    """Observe, compare and (unless check_mode) act for cni_routes' options `p`: its result
    (with `diff` when asked). A foreign route on a wanted subnet or a failed change raises PartFailed."""
    protocol, table = p["protocol"], p["table"]
    current = read_owned(ipr, protocol, table)  # observe
    if p["state"] == "present":  # compare
        plan = plan_routes(current, desired, exclusive=p["exclusive"])
        conflicts = foreign_conflicts(ipr, plan.add, protocol, table)
        if conflicts:
            raise PartFailed("routes: these subnets are already routed by routes this module does not own: %s" % ", ".join(conflicts), names_option=True)
    else:
        plan = plan_absent(current, desired)
    after = plan.predicted()
    if plan.changed and not check_mode:  # act
        try:
            apply_plan(ipr, plan, protocol, table)
        except CNIError as e:
            raise PartFailed(e.msg, added=[], replaced=[], removed=[]) from e
        after = read_owned(ipr, protocol, table)
    result: Dict[str, Any] = dict(
        changed=plan.changed,
        routes=[r.describe() for r in after],
        added=[r.describe() for r in plan.add],
        replaced=[r.describe() for r in plan.replace],
        removed=[r.describe() for r in plan.remove],
    )
    if want_diff:
        header = "owned routes (proto %d, table %d)" % (protocol, table)
        result["diff"] = dict(before=describe_all(current), after=describe_all(after), before_header=header, after_header=header)
    return result
