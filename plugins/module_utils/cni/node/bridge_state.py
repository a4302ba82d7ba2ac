# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's pod bridge (cni0) as declared state: read, plan, apply.

The bridge plugin creates the bridge lazily on the first pod; a node
reconciler wants it right before any pod exists, and wants drift (a wrong
gateway address after a pod CIDR change, a missing MTU) reported and
fixed. The address rules are the plugin's (net.addr.ensure_gateway_address):
a different IPv4 address, or an overlapping IPv6 one, is a conflict that
is replaced only when asked (force_address).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ..names import ifname_problem
from ..spec import ERR_INTERNAL, ERR_INVALID_NETCONF, CNIError
from ..net import addr as addrs
from ..net import link as links
from ..net import sysctl
from .part import PartFailed


# cni_bridge's options (bin_dir aside); also cni_node_state's O(bridge)
ARGUMENT_SPEC = dict(
    name=dict(type="str", default="cni0"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    addresses=dict(type="list", elements="str", default=[]),
    mtu=dict(type="int"),
    promisc=dict(type="bool", default=False),
    vlan_filtering=dict(type="bool"),
    force_address=dict(type="bool", default=False),
    ip_forward=dict(type="bool", default=True),
    ipv6_forwarding=dict(type="bool"),
)


@dataclass
class BridgeSpec:
    name: str
    addresses: List[str] = field(default_factory=list)  # gateway CIDRs, e.g. 10.244.1.1/24
    mtu: Optional[int] = None
    promisc: bool = False
    vlan_filtering: Optional[bool] = None
    force_address: bool = False
    ip_forward: Optional[bool] = None
    ipv6_forwarding: Optional[bool] = None


def parse_addresses(values: List[str], option: str = "addresses") -> List[str]:
    """Normalise gateway CIDRs; the host part is the gateway, so host bits are expected."""
    from netaddr import AddrFormatError, IPNetwork

    out = []
    for i, value in enumerate(values):
        try:
            if "/" not in value:
                raise ValueError
            net = IPNetwork(value)
        except (AddrFormatError, ValueError, TypeError):
            raise CNIError(ERR_INVALID_NETCONF, "%s[%d] %r is not an address in CIDR form (e.g. 10.244.1.1/24)" % (option, i, value))
        if net.ip == net.network and net.size > 2:
            raise CNIError(
                ERR_INVALID_NETCONF,
                "%s[%d] %s is the network address; give the gateway address, e.g. %s/%d" % (option, i, value, net.network + 1, net.prefixlen),
            )
        out.append("%s/%d" % (net.ip, net.prefixlen))
    fams = [IPNetwork(a).version for a in out]
    if fams.count(4) > 1:
        raise CNIError(ERR_INVALID_NETCONF, "%s has more than one IPv4 address; a bridge holds one IPv4 gateway" % option)
    return sorted(out)


MTU_RANGE = (68, 65535)  # IPv4's minimum; the largest an MTU attribute holds


def spec_from_params(p: Mapping[str, Any]) -> BridgeSpec:
    """cni_bridge's options as a spec; a CNIError naming the option when one is invalid."""
    problem = ifname_problem(p["name"])
    if problem:
        raise CNIError(ERR_INVALID_NETCONF, "name %r is not a valid interface name (%s)" % (p["name"], problem))
    if p["mtu"] is not None and not MTU_RANGE[0] <= p["mtu"] <= MTU_RANGE[1]:
        raise CNIError(ERR_INVALID_NETCONF, "mtu must be between %d and %d, got %d" % (MTU_RANGE + (p["mtu"],)))
    addresses = parse_addresses(p["addresses"])
    ipv6 = p["ipv6_forwarding"]
    if ipv6 is None and any(":" in a for a in addresses):
        ipv6 = True  # an IPv6 gateway routes nothing without it
    return BridgeSpec(
        name=p["name"],
        addresses=addresses,
        mtu=p["mtu"],
        promisc=p["promisc"],
        vlan_filtering=p["vlan_filtering"],
        force_address=p["force_address"],
        ip_forward=p["ip_forward"],
        ipv6_forwarding=ipv6,
    )


def _vlan_filtering(ipr: Any, index: int) -> bool:
    msg = ipr.get_links(index)[0]
    info = msg.get_attr("IFLA_LINKINFO")
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    return bool(data.get_attr("IFLA_BR_VLAN_FILTERING")) if data is not None else False


def read_state(ipr: Any, name: str) -> Dict[str, Any]:
    """Normalised present state; what diff shows and `changed` is computed from."""
    link = links.get_link(ipr, name)
    state: Dict[str, Any] = {"name": name, "exists": link is not None}
    if link is not None:
        state.update(
            kind=link.kind or "unknown",
            up=link.up,
            mtu=link.mtu,
            mac=link.mac,
            promisc=link.promisc,
            vlan_filtering=_vlan_filtering(ipr, link.index) if link.is_bridge else False,
            addresses=sorted(a.cidr for a in addrs.list_addresses(ipr, link) if a.is_global),
        )
    state["ip_forward"] = sysctl.read_sysctl("net/ipv4/ip_forward") == "1"
    state["ipv6_forwarding"] = sysctl.read_sysctl("net/ipv6/conf/all/forwarding") == "1"
    return state


def _conflicts(present: List[str], wanted: List[str]) -> List[str]:
    from netaddr import IPNetwork

    out = []
    for have in present:
        h = IPNetwork(have)
        if have in wanted:
            continue
        for want in wanted:
            w = IPNetwork(want)
            if h.version != w.version:
                continue
            if h.version == 4 or h.ip in w or w.ip in h:
                out.append(have)
                break
    return out


def desired_state(current: Dict[str, Any], spec: BridgeSpec) -> Dict[str, Any]:
    """The state after apply(); raises when an address conflicts and force_address is off."""
    if current["exists"] and current["kind"] != "bridge":
        raise CNIError(ERR_INTERNAL, "%r already exists but is a %s, not a bridge" % (spec.name, current["kind"]))
    present = current.get("addresses", [])
    conflicts = _conflicts(present, spec.addresses)
    if conflicts and not spec.force_address:
        raise CNIError(
            ERR_INTERNAL,
            "bridge %r has address %s, which conflicts with the desired %s; set force_address to replace it"
            % (spec.name, ", ".join(conflicts), ", ".join(spec.addresses)),
        )
    after = dict(current)
    after.update(exists=True, kind="bridge", up=True)
    after["addresses"] = sorted((set(present) - set(conflicts)) | set(spec.addresses))
    if spec.mtu:
        after["mtu"] = spec.mtu
    elif not current["exists"]:
        after["mtu"] = 1500
    if spec.promisc:
        after["promisc"] = True
    elif not current["exists"]:
        after["promisc"] = False
    if spec.vlan_filtering is not None:
        after["vlan_filtering"] = spec.vlan_filtering
    elif not current["exists"]:
        after["vlan_filtering"] = False
    after.setdefault("mac", "")
    if spec.ip_forward is not None:
        after["ip_forward"] = spec.ip_forward
    if spec.ipv6_forwarding is not None:
        after["ipv6_forwarding"] = spec.ipv6_forwarding
    return after


def absent_state(current: Dict[str, Any]) -> Dict[str, Any]:
    """The state after remove(): no link; the forwarding sysctls are left as they are."""
    return {"name": current["name"], "exists": False, "ip_forward": current["ip_forward"], "ipv6_forwarding": current["ipv6_forwarding"]}


def comparable(state: Dict[str, Any]) -> Dict[str, Any]:
    """State without what we never manage (the MAC is the kernel's choice)."""
    return {k: v for k, v in state.items() if k != "mac"}


def apply(ipr: Any, spec: BridgeSpec, current: Dict[str, Any], after: Dict[str, Any]) -> None:
    """Make the bridge match `after` (from desired_state)."""
    from pyroute2.netlink.exceptions import NetlinkError

    bridge = links.ensure_bridge(ipr, spec.name, mtu=spec.mtu or 0, promisc=spec.promisc, vlan_filtering=bool(spec.vlan_filtering))
    try:
        if spec.mtu and bridge.mtu != spec.mtu:
            ipr.link("set", index=bridge.index, mtu=spec.mtu)
        if spec.vlan_filtering is not None and _vlan_filtering(ipr, bridge.index) != spec.vlan_filtering:
            ipr.link("set", index=bridge.index, kind="bridge", br_vlan_filtering=int(spec.vlan_filtering))
    except NetlinkError as e:
        raise links.netlink_failure("configure bridge %r" % spec.name, e)
    for cidr in spec.addresses:
        addrs.ensure_gateway_address(ipr, links.require_link(ipr, spec.name), cidr, force=spec.force_address)
    # Pin the MAC: a bridge whose MAC is not set explicitly follows its ports
    # and drops to 00:00:00:00:00:00 when the last one leaves (see the plugin).
    link = links.require_link(ipr, spec.name)
    if link.mac and link.mac != "00:00:00:00:00:00" and not current.get("exists"):
        links.set_link_mac(ipr, link, link.mac)
    for key, name in (("ip_forward", "net/ipv4/ip_forward"), ("ipv6_forwarding", "net/ipv6/conf/all/forwarding")):
        want = getattr(spec, key)
        if want is not None and current.get(key) != want:
            sysctl.write_sysctl(name, "1" if want else "0")


def remove(ipr: Any, name: str) -> bool:
    link = links.get_link(ipr, name)
    if link is None:
        return False
    if not link.is_bridge:
        raise CNIError(ERR_INTERNAL, "%r is a %s, not a bridge; not removing it" % (name, link.kind))
    return links.delete_link(ipr, name)


def reconcile(ipr: Any, spec: BridgeSpec, present: bool, check_mode: bool, want_diff: bool) -> Dict[str, Any]:
    """Observe, compare and (unless check_mode) act: cni_bridge's result (with `diff` when asked).
    A conflict or a failed change raises PartFailed carrying the observed `bridge`."""
    before = read_state(ipr, spec.name)  # observe
    try:
        after = desired_state(before, spec) if present else absent_state(before)  # compare
        changed = comparable(before) != comparable(after)
        if changed and not check_mode:  # act
            if present:
                apply(ipr, spec, before, after)
                after = read_state(ipr, spec.name)
            else:
                remove(ipr, spec.name)
    except CNIError as e:
        raise PartFailed(e.msg, bridge=before) from e
    result: Dict[str, Any] = dict(changed=changed, bridge=after)
    if want_diff:
        header = "bridge %s" % spec.name
        result["diff"] = dict(before=comparable(before), after=comparable(after), before_header=header, after_header=header)
    return result
