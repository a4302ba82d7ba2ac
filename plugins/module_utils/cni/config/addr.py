# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Addresses from config, prevResult and runtimeConfig, in canonical form.

Go parses every address into a net.IP / net.IPNet before using it, so what
reaches a netlink call or a firewall script is always its canonical
spelling. We keep strings in the typed config, so the string must be that
spelling: `canonical_ip("fd00:0::5")` is "fd00::5". Anything Go's
net.ParseIP / ParseCIDR refuses is refused here, naming the field: zone
ids (`fe80::1%eth0`, which Python's ipaddress accepts and which once
carried newlines into ip6tables-restore), surrounding space, leading
zeros, netmask-style prefixes. IPv4-mapped IPv6 addresses are written as
IPv4, as Go prints them.

Standard library only (ipaddress), so the portmap and loopback hot paths
do not pay for netaddr; host-local's range math builds on these.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any, Tuple, Union

from ..spec import ERR_INVALID_NETCONF, CNIError

IPAddr = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPIface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

# What may appear in an address at all; ipaddress does the rest. (Patterns
# here are strings: re compiles and caches them on first use, not at import.)
_ADDRESS_CHARS = r"[0-9A-Fa-f:.]+\Z"


def _fail(code: int, where: str, text: str) -> CNIError:
    return CNIError(code, "field %r %s" % (where, text) if where else text)


def parse_address(value: Any, where: str = "", code: int = ERR_INVALID_NETCONF) -> IPAddr:
    """A bare IPv4/IPv6 address as Go's net.ParseIP reads it; v4-mapped -> IPv4."""
    if not isinstance(value, str):
        raise _fail(code, where, "must be an IP address string, got %r" % (value,))
    if not re.match(_ADDRESS_CHARS, value):
        # no zone id, no space, no newline: ipaddress would accept "%..." on IPv6
        raise _fail(code, where, "is not a canonical IP address: %r" % value)
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise _fail(code, where, "is not an IP address: %r" % value)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def format_address(ip: IPAddr) -> str:
    """Go's net.IP.String(): dotted IPv4, RFC 5952 compressed IPv6."""
    return ip.compressed


# A call reads the same few addresses (its result, prevResult, routes) again
# and again: each text's canonical spelling is worked out once. The answer
# depends on the text alone; a text that does not parse raises every time
# (lru_cache keeps no exception), then again with the caller's field name.
@functools.lru_cache(maxsize=1024)
def _canonical_ip_text(value: str) -> str:
    return format_address(parse_address(value))


def canonical_ip(value: Any, where: str = "", code: int = ERR_INVALID_NETCONF) -> str:
    if isinstance(value, str):
        try:
            return _canonical_ip_text(value)
        except CNIError:
            pass
    return format_address(parse_address(value, where, code))


def parse_interface(value: Any, where: str = "", code: int = ERR_INVALID_NETCONF) -> Tuple[IPAddr, int]:
    """"addr/prefix" (host bits kept, as Go's types.ParseCIDR keeps them) -> (address, prefix length)."""
    if not isinstance(value, str):
        raise _fail(code, where, "must be a CIDR string, got %r" % (value,))
    addr, sep, prefix = value.partition("/")
    if not sep or not prefix.isdigit() or not prefix.isascii() or len(prefix) > 3:
        raise _fail(code, where, "is not a CIDR address: %r" % value)
    ip = parse_address(addr, where, code)
    if ":" in addr and ip.version == 4:
        raise _fail(code, where, "is an IPv4-mapped IPv6 network, not supported: %r" % value)
    if int(prefix) > ip.max_prefixlen:
        raise _fail(code, where, "is not a CIDR address: %r" % value)
    return ip, int(prefix)


@functools.lru_cache(maxsize=1024)
def _canonical_cidr_text(value: str) -> str:
    ip, prefix = parse_interface(value)
    return "%s/%d" % (format_address(ip), prefix)


def canonical_cidr(value: Any, where: str = "", code: int = ERR_INVALID_NETCONF) -> str:
    if isinstance(value, str):
        try:
            return _canonical_cidr_text(value)
        except CNIError:
            pass
    ip, prefix = parse_interface(value, where, code)
    return "%s/%d" % (format_address(ip), prefix)
