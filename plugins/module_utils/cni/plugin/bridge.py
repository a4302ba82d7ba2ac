# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bridge: a Linux bridge on the host, a veth pair into the container (plugins/main/bridge).

ADD: ensure the bridge; create the veth pair with its container end named
CNI_IFNAME inside the netns; attach the host end as a bridge port; for an L3
network get addresses from the IPAM plugin, put them and the routes in the
container, the gateway address on the bridge, turn on forwarding and
masquerading; wait until the port forwards; report the three interfaces.
Any failure after something was created undoes it, IPAM lease included:
a failed ADD leaves nothing behind.

Deliberate differences from the Go reference, each a reported bug:
an IPAM default route plus `isDefaultGateway` yields one default route, not
`file exists`; the bridge MAC is pinned to what it is *after* the port
joined (a zero-MAC bridge no longer fails); CHECK on an L2 bridge works;
ipMasq rules are removed on DEL even when the netns or CNI_NETNS is gone
(plugins#810); a failed ADD also removes its veth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .. import invoke
from ..config.bridge import BridgeConf, parse_bridge_conf
from ..config.netconf import valid_attachments
from ..net import addr as netaddr_ops
from ..net import link as links
from ..net import route as routes
from ..net.netns import NetnsGone, current_netns_fd, entered, netns_exists
from ..net.sysctl import enable_ip_forward, try_write_sysctl
from ..skel import CmdArgs, Plugin
from ..spec import ERR_INTERNAL, ERR_INVALID_NETCONF, CNIError, Interface, Result, Route

DEFAULT_DST = {4: "0.0.0.0/0", 6: "::/0"}
ZERO_MAC = "00:00:00:00:00:00"


# ---------------------------------------------------------------------------
# ADD


def cmd_add(args: CmdArgs) -> Optional[Result]:
    conf = parse_bridge_conf(args.netconf, args.args, strict=True)
    if conf.is_layer3:
        # A missing IPAM binary is a config error: find it before creating anything.
        invoke.find_plugin(conf.ipam_type, args.path)
    undo = Rollback(args.diagnostics)
    # Opening the netns is the last check before we change anything.
    with links.open_ipr() as host, links.ipr_in_netns(args.netns) as ctr:
        try:
            result = _add(args, conf, host, ctr, undo)
            # Prove the result prints in the config's version before we keep anything.
            result.to_dict(conf.cni_version or "0.1.0")
        except BaseException:
            undo.run()
            raise
    return result


def _add(args: CmdArgs, conf: BridgeConf, host, ctr, undo: "Rollback") -> Result:
    bridge = links.ensure_bridge(host, conf.bridge, conf.mtu, conf.promisc_mode, conf.vlan_filtering)
    host_veth, container = setup_veth(args, conf, host, ctr, bridge, undo)
    result = Result(
        cni_version=conf.cni_version,
        interfaces=[
            Interface(name=bridge.name, mac=bridge.mac),
            Interface(name=host_veth.name, mac=host_veth.mac),
            Interface(name=container.name, mac=container.mac, sandbox=args.netns),
        ],
    )

    pinned: Optional[links.LinkInfo] = None  # the bridge as read after our port joined
    if conf.mac_spoof_check:
        from ..net import spoofcheck  # nftables/iptables helpers: imported only when a config asks for them

        spoofcheck.setup_spoofcheck(host_veth.name, container.mac, args.container_id, args.ifname)
        undo.push(lambda: spoofcheck.teardown_spoofcheck(args.container_id, args.ifname))

    if conf.is_layer3:
        ipam = invoke.delegate("ADD", conf.ipam_type, args.stdin, args.env)
        undo.push(lambda: invoke.delegate("DEL", conf.ipam_type, args.stdin, args.env))
        if ipam is None or not ipam.ips:
            raise CNIError(ERR_INTERNAL, "IPAM plugin returned missing IP config")
        result.ips, result.routes, result.dns = ipam.ips, ipam.routes, ipam.dns
        gateways = calc_gateways(result, conf)
        configure_container_iface(args, conf, ctr, container, result, gateways)
        if conf.is_gateway:
            gateway_iface, pinned = setup_gateways(conf, host, bridge, gateways, undo)
            if gateway_iface is not None:
                result.interfaces.append(gateway_iface)
        if conf.ip_masq:
            from ..net import ipmasq

            undo.push(lambda: ipmasq.teardown_ipmasq(conf.name, args.ifname, args.container_id))
            ipmasq.setup_ipmasq(conf.ip_masq_backend, [ip.address for ip in result.ips], conf.name, args.ifname, args.container_id)
    elif not conf.disable_container_interface:
        links.set_link_up(ctr, container)

    # Both MACs can change once the port is in the bridge (plugins#805/#809): read them now
    # (the bridge's was read after the join when its MAC was pinned).
    if not conf.disable_container_interface:
        host_veth = links.wait_oper_up(host, host_veth)
    else:
        host_veth = links.reread(host, host_veth)
    result.interfaces[1].mac = host_veth.mac
    result.interfaces[0].mac = (pinned or links.reread(host, bridge)).mac

    if not conf.dns.is_empty():
        result.dns = conf.dns
    return result


def setup_veth(args: CmdArgs, conf: BridgeConf, host, ctr, bridge: links.LinkInfo, undo: "Rollback"):
    """The veth pair: container end CNI_IFNAME in the netns, host end a configured bridge port."""
    host_fd = current_netns_fd()
    try:
        host_name, container = links.create_veth_pair(ctr, args.ifname, host_fd, conf.mtu, conf.mac)
    finally:
        os.close(host_fd)
    # Deleting either end removes the pair; the host end needs no netns switch.
    undo.push(lambda: links.delete_link(host, host_name))
    # The container end's IFLA_LINK is the host end's ifindex: no read of the host end yet.
    host_veth = links.known_link(container.link, host_name, "veth") if container.link else links.require_link(host, host_name)
    try_write_sysctl("net/ipv6/conf/%s/accept_ra" % host_name, "0")
    attach_port(conf, host, bridge, host_veth, conf.vlan)  # and up, in the same request
    return host_veth, container  # read again once it forwards (its MAC may change)


def attach_port(conf: BridgeConf, host, bridge: links.LinkInfo, port: links.LinkInfo, vlan: int, trunk: Optional[List[int]] = None) -> None:
    """`port` up as a port of `bridge` (one request), its flags and VLANs set."""
    links.set_master(host, port, bridge, up=True)
    links.set_port_flags(host, port, conf.hairpin_mode, conf.port_isolation)
    links.setup_port_vlans(host, port, vlan, conf.vlan_trunk if trunk is None else trunk, conf.preserve_default_vlan)


@dataclass
class FamilyGateways:
    """Per address family: the gateway gw-less routes use, and the gateway CIDRs for the bridge."""

    gateway: str = ""
    bridge_cidrs: List[str] = field(default_factory=list)


def calc_gateways(result: Result, conf: BridgeConf) -> Dict[int, FamilyGateways]:
    """Fill in gateways and the default route (reference calcGateways, with one fix).

    Every address belongs to the container interface (index 2). Without an
    IPAM gateway, `isGateway` means network + 1. With `isDefaultGateway`,
    a family gets a default route via its first gateway unless one exists:
    an IPAM default route *without* a gateway counts too (the reference
    then adds a second, identical one and fails with `file exists`); it is
    completed with the gateway it will be installed with.
    """
    from netaddr import IPNetwork

    out: Dict[int, FamilyGateways] = {}
    for ip in result.ips:
        family = ip.version
        gws = out.setdefault(family, FamilyGateways())
        ip.interface = 2
        if not ip.gateway and conf.is_gateway:
            net = IPNetwork(ip.address)
            ip.gateway = str(net.network + 1)
        if ip.gateway and not gws.gateway:
            gws.gateway = ip.gateway
        if conf.is_default_gateway and ip.gateway:
            defaults = [r for r in result.routes if r.version == family and r.is_default()]
            if not defaults:
                result.routes.append(Route(dst=DEFAULT_DST[family], gw=ip.gateway))
            for route in defaults:
                if not route.gw:
                    route.gw = gws.gateway
        if conf.is_gateway:
            cidr = "%s/%d" % (ip.gateway, IPNetwork(ip.address).prefixlen)
            if cidr not in gws.bridge_cidrs:
                gws.bridge_cidrs.append(cidr)
    return out


def configure_container_iface(args: CmdArgs, conf: BridgeConf, ctr, container: links.LinkInfo, result: Result, gateways: Dict[int, FamilyGateways]) -> None:
    """Addresses, link up, routes in the container (pkg/ipam ConfigureIface)."""
    ifname = args.ifname
    has_v6 = any(ip.version == 6 for ip in result.ips)
    with entered(args.netns):
        # /proc/sys/net is the netns of whoever opens it: these are the container's.
        if conf.enable_dad:
            try_write_sysctl("net/ipv6/conf/%s/enhanced_dad" % ifname, "1")
            try_write_sysctl("net/ipv6/conf/%s/accept_dad" % ifname, "1")
        else:
            try_write_sysctl("net/ipv6/conf/%s/accept_dad" % ifname, "0")
        try_write_sysctl("net/ipv4/conf/%s/arp_notify" % ifname, "1")
        if has_v6:
            for dev in ("lo", ifname):
                try_write_sysctl("net/ipv6/conf/%s/disable_ipv6" % dev, "0")
            try_write_sysctl("net/ipv6/conf/%s/keep_addr_on_down" % ifname, "1")
    for ip in result.ips:
        if ip.interface is None or not 0 <= ip.interface < len(result.interfaces) or result.interfaces[ip.interface].name != ifname:
            raise CNIError(ERR_INTERNAL, "invalid interface index %r for address %s" % (ip.interface, ip.address))
        netaddr_ops.add_address(ctr, container, ip.address)
    links.set_link_up(ctr, container)
    if has_v6 and gateways.get(6) and gateways[6].gateway:
        netaddr_ops.wait_dad_settled(ctr, container)
    installed = set()
    for route in result.routes:
        gw = route.gw or (gateways[route.version].gateway if route.version in gateways else "")
        key = (str(route.dst), gw, route.table, route.priority)
        if key in installed:  # the same route twice is one route, not `file exists`
            continue
        installed.add(key)
        routes.add_route(ctr, route, oif=container.index, gateway=gw)


def setup_gateways(
    conf: BridgeConf, host, bridge: links.LinkInfo, gateways: Dict[int, FamilyGateways], undo: "Rollback"
) -> Tuple[Optional[Interface], Optional[links.LinkInfo]]:
    """Gateway addresses on the bridge (or the VLAN gateway interface), MAC pinned, forwarding on.

    Returns the VLAN gateway interface if one was used, and the bridge as
    read when its MAC was pinned (None when it was not).
    """
    target = bridge
    vlan_iface: Optional[Interface] = None
    if conf.vlan:
        target = ensure_vlan_gateway(conf, host, bridge, undo)
        vlan_iface = Interface(name=target.name, mac=target.mac)
    for family in (4, 6):
        gws = gateways.get(family)
        if not gws or not gws.bridge_cidrs:
            continue
        for cidr in gws.bridge_cidrs:
            try:
                netaddr_ops.ensure_gateway_address(host, target, cidr, conf.force_address, also_wanted=gws.bridge_cidrs)
            except CNIError as e:
                raise CNIError(e.code, "failed to set bridge addr: %s" % e.msg, e.details)
        enable_ip_forward(family)
    pinned = pin_bridge_mac(host, bridge) if target is bridge else None
    return vlan_iface, pinned


def pin_bridge_mac(host, bridge: links.LinkInfo) -> links.LinkInfo:
    """Set the bridge's MAC to itself so it stops following its ports.

    Read *now*, after our port joined: a bridge that never had its MAC
    pinned drops to 00:00:00:00:00:00 when its last port leaves, and
    re-applying a MAC read before the join fails with EINVAL (reference bug).
    """
    bridge = links.reread(host, bridge)
    if bridge.mac and bridge.mac != ZERO_MAC:
        links.set_link_mac(host, bridge, bridge.mac)
    return bridge


def ensure_vlan_gateway(conf: BridgeConf, host, bridge: links.LinkInfo, undo: "Rollback") -> links.LinkInfo:
    """`<bridge>.<vlan>`: a host veth whose peer is an untagged port of the VLAN; it carries the gateway."""
    name = conf.vlan_gateway_name
    existing = links.get_link(host, name)
    if existing is not None:
        return existing
    host_fd = current_netns_fd()
    try:
        port_name, gateway = links.create_veth_pair(host, name, host_fd, bridge.mtu)
    finally:
        os.close(host_fd)
    undo.push(lambda: links.delete_link(host, name))
    port = links.require_link(host, port_name)
    attach_port(conf, host, bridge, port, conf.vlan, trunk=[])
    links.set_link_up(host, gateway)
    return links.require_link(host, name)


# ---------------------------------------------------------------------------
# DEL


def cmd_del(args: CmdArgs) -> Optional[Result]:
    """Best effort: remove what exists, succeed for what is already gone, repeatable."""
    conf = parse_bridge_conf(args.netconf, args.args, strict=False)
    errors: List[CNIError] = []
    if args.netns and netns_exists(args.netns):
        try:
            with links.ipr_in_netns(args.netns) as ctr:
                # the container end takes the host end with it
                links.delete_link(ctr, args.ifname)
        except NetnsGone:
            pass  # nothing of ours is left in it (Go: NSPathNotExistErr)
        except CNIError as e:
            if netns_exists(args.netns):
                errors.append(e)
    if conf.is_layer3:
        try:
            invoke.delegate("DEL", conf.ipam_type, args.stdin, args.env)
        except CNIError as e:
            errors.insert(0, e)
    if conf.mac_spoof_check:
        from ..net import spoofcheck

        try:
            spoofcheck.teardown_spoofcheck(args.container_id, args.ifname)
        except CNIError:
            pass  # the reference only logs this: a stale drop rule matches no port
    if conf.is_layer3 and conf.ip_masq:
        from ..net import ipmasq

        # By comment hash and chain name: needs neither the netns nor addresses.
        try:
            ipmasq.teardown_ipmasq(conf.name, args.ifname, args.container_id)
        except CNIError as e:
            errors.append(e)
    if errors:
        raise errors[0]
    return None


# ---------------------------------------------------------------------------
# CHECK


def cmd_check(args: CmdArgs) -> Optional[Result]:
    conf = parse_bridge_conf(args.netconf, args.args, strict=True)
    with links.ipr_in_netns(args.netns) as ctr, links.open_ipr() as host:
        # Only an L3 bridge has an IPAM to ask (reference: always, so L2 CHECK failed).
        if conf.is_layer3:
            invoke.delegate("CHECK", conf.ipam_type, args.stdin, args.env)
        prev = conf.net.prev_result
        if prev is None:
            raise CNIError(ERR_INVALID_NETCONF, "Required prevResult missing")
        bridge_entry = next((i for i in prev.interfaces if i.name == conf.bridge), None)
        container_entry = next((i for i in prev.interfaces if i.name == args.ifname and i.sandbox == args.netns), None)
        bridge = check_bridge(conf, host, bridge_entry)
        if container_entry is None:
            shown = next((i.sandbox for i in prev.interfaces if i.name == args.ifname), "")
            raise CNIError(ERR_INTERNAL, "Sandbox in prevResult %s doesn't match configured netns: %s" % (shown, args.netns))
        container = check_container_iface(ctr, container_entry)
        check_host_veth(conf, host, prev, bridge, container, container_entry)
        check_addresses_and_routes(ctr, container, prev)
    from ..net import ipmasq, spoofcheck

    if conf.is_layer3 and conf.ip_masq and not ipmasq.ipmasq_present(conf.ip_masq_backend, conf.name, args.ifname, args.container_id):
        raise CNIError(ERR_INTERNAL, "ipMasq rules for %s/%s are missing" % (args.container_id, args.ifname))
    if conf.mac_spoof_check and not spoofcheck.spoofcheck_present(args.container_id, args.ifname):
        raise CNIError(ERR_INTERNAL, "macspoofchk rules for %s/%s are missing" % (args.container_id, args.ifname))
    return None


def check_bridge(conf: BridgeConf, host, entry: Optional[Interface]) -> links.LinkInfo:
    if entry is None:
        raise CNIError(ERR_INTERNAL, "CNI created bridge %s in host namespace was not found" % conf.bridge)
    if entry.sandbox:
        raise CNIError(ERR_INTERNAL, "Interface %s should not be in sandbox" % entry.name)
    bridge = links.get_link(host, entry.name)
    if bridge is None:
        raise CNIError(ERR_INTERNAL, "Interface name %s not found" % entry.name)
    if not bridge.is_bridge:
        raise CNIError(ERR_INTERNAL, "Interface %s does not have link type of bridge" % entry.name)
    # Only a gateway bridge has its MAC pinned (by us); otherwise the kernel
    # gives it the lowest MAC among its ports, and another container joining
    # must not make this attachment's CHECK fail.
    if conf.is_gateway and entry.mac and entry.mac.lower() != bridge.mac:
        raise CNIError(ERR_INTERNAL, "Bridge interface %s Mac doesn't match: %s" % (entry.name, entry.mac))
    if bridge.promisc != conf.promisc_mode:
        raise CNIError(
            ERR_INTERNAL,
            "Bridge interface %s configured Promisc Mode %s doesn't match current state: %s" % (entry.name, conf.promisc_mode, bridge.promisc),
        )
    return bridge


def check_container_iface(ctr, entry: Interface) -> links.LinkInfo:
    container = links.get_link(ctr, entry.name)
    if container is None:
        raise CNIError(ERR_INTERNAL, "Interface name %s not found" % entry.name)
    if not container.is_veth:
        raise CNIError(ERR_INTERNAL, "Error: Container interface %s not of type veth" % entry.name)
    if entry.mac and entry.mac.lower() != container.mac:
        raise CNIError(ERR_INTERNAL, "Interface %s Mac %s doesn't match container Mac: %s" % (entry.name, entry.mac, container.mac))
    return container


def check_host_veth(conf: BridgeConf, host, prev: Result, bridge: links.LinkInfo, container: links.LinkInfo, container_entry: Interface) -> None:
    """Some other recorded interface is the container's veth peer and a port of the bridge."""
    for entry in prev.interfaces:
        if entry.name in (bridge.name, container_entry.name) or entry.sandbox:
            continue
        veth = links.get_link(host, entry.name)
        if veth is None or not veth.is_veth:
            continue  # not ours
        if veth.index != container.link or veth.link != container.index or veth.master != bridge.index:
            continue
        if entry.mac and entry.mac.lower() != veth.mac:
            raise CNIError(ERR_INTERNAL, "Interface %s Mac doesn't match: %s not found" % (entry.name, entry.mac))
        return
    raise CNIError(ERR_INTERNAL, "CNI veth created for bridge %s was not found" % conf.bridge)


def check_addresses_and_routes(ctr, container: links.LinkInfo, prev: Result) -> None:
    from netaddr import IPNetwork

    present = {(str(IPNetwork(a.cidr).ip), IPNetwork(a.cidr).prefixlen) for a in netaddr_ops.list_addresses(ctr, container)}
    table = routes.list_routes(ctr)
    for ip in prev.ips:
        net = IPNetwork(ip.address)
        if (str(net.ip), net.prefixlen) not in present:
            raise CNIError(ERR_INTERNAL, "Failed to match addr %s on interface %s" % (ip.address, container.name))
        if routes.find_route(table, Route(dst=str(net.cidr))) is None:
            raise CNIError(ERR_INTERNAL, "Failed to match route to %s on interface %s" % (net.cidr, container.name))
    for want in prev.routes:
        if routes.find_route(table, want) is None:
            raise CNIError(ERR_INTERNAL, "Failed to match route %s%s" % (want.dst, " via " + want.gw if want.gw else ""))


# ---------------------------------------------------------------------------
# GC and STATUS (spec 1.1.0)


def cmd_gc(args: CmdArgs) -> Optional[Result]:
    """Release what belongs to attachments no longer valid: IPAM leases and ipMasq rules.

    Keeps going after an error and reports all of them (spec). macspoofchk
    chains are named by container and ifname only, not by network, so GC
    cannot tell whether another network owns them and leaves them.
    """
    conf = parse_bridge_conf(args.netconf, args.args, strict=False)
    valid = valid_attachments(args.netconf)
    errors: List[str] = []
    if conf.is_layer3:
        try:
            invoke.delegate("GC", conf.ipam_type, args.stdin, args.env)
        except CNIError as e:
            errors.append(str(e))
        # Not told what is valid (no key): free nothing, as host-local does.
        if valid is not None:
            from ..net import ipmasq

            try:
                # whatever ipMasq says now: rules from when it was on are stale too
                ipmasq.gc_ipmasq(conf.name, sorted(valid))
            except CNIError as e:
                errors.append(str(e))
    if errors:
        raise CNIError(ERR_INTERNAL, "; ".join(errors))
    return None


def cmd_status(args: CmdArgs) -> Optional[Result]:
    """Ready when the IPAM plugin is (the reference delegates STATUS the same way)."""
    conf = parse_bridge_conf(args.netconf, args.args, strict=False)
    if conf.is_layer3:
        invoke.delegate("STATUS", conf.ipam_type, args.stdin, args.env)
    return None


# ---------------------------------------------------------------------------


class Rollback:
    """Undo steps of a failing ADD, run newest first. A step that fails does not
    stop the others nor replace the error that made ADD fail (the runtime must
    see that one); it is reported in `report` (skel prints it on stderr)."""

    def __init__(self, report: Optional[List[str]] = None) -> None:
        self._steps: List[Callable[[], object]] = []
        self.report: List[str] = report if report is not None else []

    def push(self, step: Callable[[], object]) -> None:
        self._steps.append(step)

    def run(self) -> None:
        while self._steps:
            step = self._steps.pop()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - every step runs; each failure is reported
                self.report.append("bridge: undo of a failed ADD left something behind: %s: %s" % (type(e).__name__, e))


PLUGIN = Plugin(name="bridge", add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc, status=cmd_status, warm=links.preload)
