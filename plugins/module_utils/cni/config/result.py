# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Results of any spec version read into spec.Result (prevResult, IPAM output, cache).

Go reads them into types020/040/100 structs, so keys follow encoding/json
(decode.Fields); every address is parsed to its canonical spelling
(config.addr), so nothing non-canonical reaches netlink or a firewall
script from a result.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from ..spec import (
    DNS,
    ERR_DECODE,
    ERR_INCOMPATIBLE_VERSION,
    SUPPORTED_VERSIONS,
    CNIError,
    CURRENT_VERSION,
    Interface,
    IPConfig,
    Result,
    Route,
)
from .addr import canonical_cidr, canonical_ip
from .decode import Fields

# Plain fields read one to one, as Go's struct tags say: (attribute, JSON key, reader).
_INTERFACE_FIELDS = (("name", "name", Fields.str), ("mac", "mac", Fields.str), ("sandbox", "sandbox", Fields.str),
                     ("mtu", "mtu", Fields.int), ("socket_path", "socketPath", Fields.str), ("pci_id", "pciID", Fields.str))
_ROUTE_FIELDS = (("mtu", "mtu", Fields.int), ("advmss", "advmss", Fields.int), ("priority", "priority", Fields.int),
                 ("table", "table", Fields.opt_int), ("scope", "scope", Fields.opt_int))
_DNS_FIELDS = (("nameservers", "nameservers", Fields.strings), ("domain", "domain", Fields.str),
               ("search", "search", Fields.strings), ("options", "options", Fields.strings))


def _plain(f: Fields, table: Tuple[Tuple[str, str, Callable[[Fields, str], Any]], ...]) -> Dict[str, Any]:
    return {attribute: read(f, key) for attribute, key, read in table}


def parse_result(value: Any, where: str = "result", code: int = ERR_DECODE) -> Result:
    """A result object of any supported version, as its own cniVersion says."""
    if not isinstance(value, dict):
        raise CNIError(code, "%s must be a JSON object" % where)
    f = Fields(value, where, code)
    version = f.str("cniVersion")
    if version and version not in SUPPORTED_VERSIONS:
        raise CNIError(ERR_INCOMPATIBLE_VERSION, "unsupported %s.cniVersion %r" % (where, version))
    if version in ("", "0.1.0", "0.2.0") and not (f.present("ips") or f.present("interfaces")):
        return _from_020(f, version or "0.1.0")
    res = Result(cni_version=version or CURRENT_VERSION)
    res.interfaces = [parse_interface(i) for i in f.objects("interfaces")]
    res.ips = [parse_ip_config(i) for i in f.objects("ips")]
    res.routes = [parse_route(r) for r in f.objects("routes")]
    res.dns = parse_dns(f.obj("dns"))
    return res


def _from_020(f: Fields, version: str) -> Result:
    res = Result(cni_version=version)
    for key in ("ip4", "ip6"):
        if not f.has(key):
            continue
        block = f.obj(key)
        res.ips.append(IPConfig(address=canonical_cidr(block.get("ip"), block.path("ip"), f.code), gateway=_opt_ip(block, "gateway")))
        res.routes += [parse_route(r) for r in block.objects("routes")]
    res.dns = parse_dns(f.obj("dns"))
    return res


def parse_interface(f: Fields) -> Interface:
    return Interface(**_plain(f, _INTERFACE_FIELDS))


def parse_ip_config(f: Fields) -> IPConfig:
    return IPConfig(
        address=canonical_cidr(f.get("address"), f.path("address"), f.code),
        gateway=_opt_ip(f, "gateway"),
        interface=f.opt_int("interface"),
    )


def parse_route(f: Fields) -> Route:
    return Route(dst=canonical_cidr(f.get("dst"), f.path("dst"), f.code), gw=_opt_ip(f, "gw"), **_plain(f, _ROUTE_FIELDS))


def parse_dns(f: Fields) -> DNS:
    return DNS(**_plain(f, _DNS_FIELDS))


def _opt_ip(f: Fields, key: str) -> str:
    # Go: net.IP with omitempty; "" and null are "no address"
    value = f.str(key)
    return canonical_ip(value, f.path(key), f.code) if value else ""
