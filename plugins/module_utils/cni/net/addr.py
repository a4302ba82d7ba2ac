# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Interface addresses through pyroute2 (pkg/ip addr_linux.go, bridge ensureAddr).

Addresses travel as CIDR strings with the host part kept ("10.22.0.1/16"),
the form CNI results use. Address math is netaddr's.
"""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass
from typing import Any, List, Sequence

from ..spec import ERR_INTERNAL, CNIError
from .link import LinkInfo, netlink_op

IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_UNIVERSE = 0
# Upper bound for IPv6 duplicate address detection to settle (reference: 5 s).
DAD_TIMEOUT = 5.0


@dataclass
class AddrInfo:
    """An address of a link as read back."""

    cidr: str  # "10.22.0.1/16"
    family: int  # 4 or 6
    scope: int
    flags: int

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE) and not self.flags & IFA_F_DADFAILED

    @property
    def is_global(self) -> bool:
        return self.scope == RT_SCOPE_UNIVERSE


def _family_code(family: int) -> int:
    return {4: socket.AF_INET, 6: socket.AF_INET6}.get(family, socket.AF_UNSPEC)


def list_addresses(ipr: Any, link: LinkInfo, family: int = 0) -> List[AddrInfo]:
    """Addresses on `link`, optionally of one family (4/6), kernel order."""
    out: List[AddrInfo] = []
    for msg in ipr.get_addr(family=_family_code(family), index=link.index):
        if msg["index"] != link.index:
            continue
        fam = 4 if msg["family"] == socket.AF_INET else 6
        flags = msg.get_attr("IFA_FLAGS")
        out.append(
            AddrInfo(
                cidr="%s/%d" % (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"]),
                family=fam,
                scope=msg["scope"],
                flags=flags if flags is not None else msg["flags"],
            )
        )
    return out


def add_address(ipr: Any, link: LinkInfo, cidr: str, exist_ok: bool = False) -> None:
    """Add `cidr` to `link`; IPv4 gets its broadcast address like `ip addr add ... brd +`."""
    from netaddr import IPNetwork

    net = IPNetwork(cidr)
    spec = {"index": link.index, "address": str(net.ip), "prefixlen": net.prefixlen}
    if net.version == 4 and net.prefixlen < 31:
        spec["broadcast"] = str(net.broadcast)
    with netlink_op("add IP address %s to %r" % (cidr, link.name), ignore=(errno.EEXIST,) if exist_ok else ()):
        ipr.addr("add", **spec)


def delete_address(ipr: Any, link: LinkInfo, cidr: str) -> None:
    from netaddr import IPNetwork

    net = IPNetwork(cidr)
    with netlink_op("remove IP address %s from %r" % (cidr, link.name), ignore=(errno.EADDRNOTAVAIL,)):
        ipr.addr("del", index=link.index, address=str(net.ip), prefixlen=net.prefixlen)


def ensure_gateway_address(ipr: Any, link: LinkInfo, cidr: str, force: bool, also_wanted: Sequence[str] = ()) -> bool:
    """Make `cidr` an address of `link` (the bridge's ensureAddr). True if it was added.

    IPv4: any other IPv4 address conflicts, so two pod CIDRs never silently
    share one bridge; `force` replaces it (the usual fix after a node's pod
    CIDR changed). IPv6: only overlapping prefixes conflict, so several
    non-overlapping gateway addresses may coexist. Link-local IPv6 never
    conflicts, nor do the `also_wanted` addresses (the other gateways of the
    same ADD, which the reference would make flap with `force`).
    """
    from netaddr import IPNetwork

    want = IPNetwork(cidr)
    have = [(a.cidr, IPNetwork(a.cidr)) for a in list_addresses(ipr, link, want.version)]
    # Present already: done, whatever else is there (the reference's answer depended on address order).
    if any(net.ip == want.ip and net.prefixlen == want.prefixlen for _text, net in have):
        return False
    keep = {(n.ip, n.prefixlen) for n in (IPNetwork(c) for c in also_wanted)}
    for text, current in have:
        if (current.ip, current.prefixlen) in keep:
            continue
        if want.version == 6 and (current.ip.is_link_local() or not (want.ip in current or current.ip in want)):
            continue
        if not force:
            raise CNIError(ERR_INTERNAL, "%r already has an IP address different from %s" % (link.name, cidr))
        delete_address(ipr, link, text)
    add_address(ipr, link, cidr, exist_ok=True)
    return True


def wait_dad_settled(ipr: Any, link: LinkInfo, timeout: float = DAD_TIMEOUT) -> bool:
    """Wait (bounded) until no IPv6 address of `link` is tentative; True if settled."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if not any(a.tentative for a in list_addresses(ipr, link, 6)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
