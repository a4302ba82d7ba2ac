# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The loopback device of the calling thread's netns, on the plugins' own
rtnetlink socket (net/rtnl.py through net/link.py and net/addr.py, as the
bridge plugin uses it): no pyroute2 IPRoute, whose every call runs an
asyncio event loop and whose import brings pyroute2's whole socket layer
into the agent. Netlink failures are CNI errors naming what failed
(link.netlink_op)."""

from __future__ import annotations

import ipaddress
from typing import List

from . import addr as addrs
from . import link as links


def set_loopback_up() -> List[str]:
    """Set lo up; return its addresses as CIDR strings, IPv4 first (kernel order)."""
    with links.open_ipr() as ipr:
        lo = links.require_link(ipr, "lo")
        links.set_link_up(ipr, lo)
        out = [address.cidr for address in addrs.list_addresses(ipr, lo)]
    out.sort(key=family)
    return out


def set_loopback_down() -> None:
    with links.open_ipr() as ipr:
        lo = links.require_link(ipr, "lo")
        with links.netlink_op("set 'lo' down"):
            ipr.link("set", index=lo.index, state="down")


def loopback_is_up() -> bool:
    with links.open_ipr() as ipr:
        return links.require_link(ipr, "lo").up


def family(address: str) -> int:
    return ipaddress.ip_interface(address).version


def is_loopback_address(address: str) -> bool:
    return ipaddress.ip_interface(address).ip.is_loopback
