# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""portmap: forward host ports to a container (plugins/meta/portmap).

A chained plugin: ADD needs the previous plugin's result, installs DNAT
(and masquerade for hairpin/localhost) rules for the runtime's
`portMappings`, and passes the result through unchanged.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..config.netconf import parse_netconf
from ..config.portmap import PortMapConf, parse_portmap
from ..net import hostport, nftcmd
from ..skel import CmdArgs, Plugin
from ..spec import ERR_INTERNAL, ERR_INVALID_NETCONF, CNIError, Result


def _load(args: CmdArgs, lenient: bool = False) -> PortMapConf:
    pm = parse_portmap(parse_netconf(args.netconf, lenient=lenient), lenient=lenient)
    if not pm.backend:
        # Our choice differs from Go (iptables first): nftables rules carry
        # their owner, and it is what new nodes run. Same as bridge's ipMasq.
        pm.backend = "nftables" if nftcmd.nft_available() else "iptables"
    return pm


def _targets(result: Result, ifname: str) -> List[hostport.Target]:
    """First IPv4 and first IPv6 of the container interface in prevResult."""
    targets: List[hostport.Target] = []
    for ip in result.ips:
        if ip.interface is not None:
            if not 0 <= ip.interface < len(result.interfaces):
                continue
            iface = result.interfaces[ip.interface]
            if iface.name != ifname or not iface.sandbox:
                continue
        if any(t.family == ip.version for t in targets):
            continue
        address, prefix = ip.address.split("/")
        targets.append(hostport.Target(family=ip.version, address=address, prefixlen=int(prefix)))
    return targets


def _enable_route_localnet(targets: List[hostport.Target], report: List[str]) -> None:
    # DNAT of 127.0.0.1:hostPort traffic needs route_localnet on the
    # interface that routes to the container (the reference does the same).
    from ..net.link import get_link_by_index, open_ipr
    from ..net.sysctl import try_write_sysctl

    for target in targets:
        if target.family != 4:
            continue
        with open_ipr() as ipr:
            try:
                routes = ipr.route("get", dst=target.address)
            except Exception as e:  # noqa: BLE001 - no route: nothing to enable, but say so
                report.append("portmap: no route to %s to enable route_localnet on: %s" % (target.address, e))
                continue
            for route in routes:
                link = get_link_by_index(ipr, route.get_attr("RTA_OIF") or 0)
                if link is not None:
                    try_write_sysctl("net/ipv4/conf/%s/route_localnet" % link.name, "1")


def _chained(args: CmdArgs) -> Tuple[PortMapConf, Result]:
    """The config and prevResult of an ADD or CHECK: portmap only runs chained."""
    pm = _load(args)
    if pm.net.prev_result is None:
        raise CNIError(ERR_INVALID_NETCONF, "must be called as chained plugin (prevResult is missing)")
    return pm, pm.net.prev_result


def cmd_add(args: CmdArgs) -> Optional[Result]:
    pm, prev_result = _chained(args)
    if not pm.mappings:
        return prev_result
    targets = _targets(prev_result, args.ifname)
    if not targets:
        raise CNIError(ERR_INVALID_NETCONF, "prevResult has no address on interface %r in a sandbox to forward ports to" % args.ifname)
    try:
        if pm.backend == "nftables":
            hostport.nft_setup(pm, args.container_id, targets)
        else:
            hostport.ipt_setup(pm, args.container_id, targets)
        if pm.snat and not pm.masq_all:
            _enable_route_localnet(targets, args.diagnostics)
    except BaseException:
        # leave nothing half-made behind, whatever the failure; the runtime
        # sees the error that made ADD fail, a failing undo goes to stderr
        try:
            _teardown(pm, args.container_id)
        except Exception as undo_error:  # noqa: BLE001 - reported, the original error wins
            args.diagnostics.append("portmap: undo of a failed ADD failed: %s" % undo_error)
        raise
    return prev_result


def _teardown(pm: PortMapConf, container_id: str) -> None:
    # Both backends: the attachment may have been made with the other one.
    errors = []
    for teardown in (lambda: hostport.nft_teardown(container_id), lambda: hostport.ipt_teardown(pm, container_id)):
        try:
            teardown()
        except Exception as e:  # noqa: BLE001 - one backend failing must not skip the other
            errors.append(str(e))
    if errors:
        raise CNIError(ERR_INTERNAL, "portmap teardown failed: " + "; ".join(errors))


def cmd_del(args: CmdArgs) -> Optional[Result]:
    # Rules are found by container ID, so DEL needs neither prevResult nor
    # the mappings: when those do not parse it still removes what exists
    # and succeeds (a failing portmap DEL strands bridge and host-local,
    # which come after it in libcni's DEL chain).
    pm = _load(args, lenient=True)
    # Like the reference (plugins#509): without mappings DEL does nothing, so
    # pods without hostPorts never pay for a firewall lock on delete.
    if pm.mappings or pm.net.problems:
        _teardown(pm, args.container_id)
    return None


def cmd_check(args: CmdArgs) -> Optional[Result]:
    pm, prev_result = _chained(args)
    if not pm.mappings:
        return None
    targets = _targets(prev_result, args.ifname)
    if pm.backend == "nftables":
        counts = hostport.nft_rule_counts(args.container_id)
        want = sum(len(hostport._mappings_for(t.family, pm.mappings)) for t in targets)
        have = counts.get("hostports", 0) + counts.get("hostip_hostports", 0)
        if have < want:
            raise CNIError(ERR_INTERNAL, "portmap: %d of %d DNAT rules for container %s are missing" % (want - have, want, args.container_id))
        if pm.snat and not counts.get("masquerading"):
            raise CNIError(ERR_INTERNAL, "portmap: masquerade rules for container %s are missing" % args.container_id)
    else:
        missing = hostport.ipt_present(pm, args.container_id, [t.family for t in targets])
        if missing:
            raise CNIError(ERR_INTERNAL, "portmap: missing for container %s: %s" % (args.container_id, ", ".join(missing)))
    return None


# No GC: the reference layout names a rule's owner by container ID only, and
# the tables are shared by every network on the node, so a GC for one
# network cannot tell another network's live containers from stale ones.
# Stale rules are removed by the runtime's DEL (libcni replays the cached
# portMappings); skel answers GC with success.
# portmap acts in the host's netns only, so CNI_NETNS may be anything (Go 1.1).
PLUGIN = Plugin(name="portmap", add=cmd_add, delete=cmd_del, check=cmd_check, enters_netns=False)
