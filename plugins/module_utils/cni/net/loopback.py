# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The loopback device of the current netns, through pyroute2."""

from __future__ import annotations

import ipaddress
from typing import List


def _lo_index(ipr) -> int:
    return ipr.link_lookup(ifname="lo")[0]


def set_loopback_up() -> List[str]:
    """Set lo up; return its addresses as CIDR strings, IPv4 first (kernel order)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = _lo_index(ipr)
        ipr.link("set", index=idx, state="up")
        out = []
        for msg in ipr.get_addr(index=idx):
            out.append("%s/%d" % (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"]))
        out.sort(key=family)
        return out


def set_loopback_down() -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("set", index=_lo_index(ipr), state="down")


def loopback_is_up() -> bool:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        link = ipr.get_links(_lo_index(ipr))[0]
        return bool(link["flags"] & 1)  # IFF_UP


def family(address: str) -> int:
    return ipaddress.ip_interface(address).version


def is_loopback_address(address: str) -> bool:
    return ipaddress.ip_interface(address).ip.is_loopback
