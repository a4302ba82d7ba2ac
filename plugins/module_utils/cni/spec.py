# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CNI spec layer: versions, error codes, result types and conversion.

Standard library only: this module is imported on every plugin exec.
Conversion follows the spec's "Result type" sections and the Go library's
converters (pkg/types/internal/convert.go, types/020, 040, 100).
"""

from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

SUPPORTED_VERSIONS: Tuple[str, ...] = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
CURRENT_VERSION = "1.1.0"

# Error codes, SPEC.md "Error" section. 0-99 are reserved for the spec.
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_NETCONF = 7
ERR_TRY_AGAIN = 11
ERR_NOT_AVAILABLE = 50
ERR_LIMITED_CONNECTIVITY = 51
# Not in the spec: the Go library wraps every plain plugin error as 999
# (ErrInternal). We use it for the same class of failure (netlink refused,
# range exhausted, kernel state unexpected) so tools that match on it keep working.
ERR_INTERNAL = 999


class CNIError(Exception):
    """The one error type. Carries the spec code; only skel prints it."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = int(code)
        self.msg = msg
        self.details = details

    def to_dict(self, cni_version: str = "") -> Dict[str, Any]:
        # The spec's error object carries cniVersion; the Go library omits it.
        # We include it when we know the config's version (spec wins).
        out: Dict[str, Any] = {}
        if cni_version:
            out["cniVersion"] = cni_version
        out["code"] = self.code
        out["msg"] = self.msg
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return self.msg + (": " + self.details if self.details else "")


def parse_version(version: str) -> Tuple[int, int, int]:
    """'0.3.1' -> (0, 3, 1). An empty version means 0.1.0 (Go's create.go)."""
    if version == "":
        return (0, 1, 0)
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CNIError(ERR_DECODE, "invalid version %r: must be of the form MAJOR.MINOR.PATCH" % version)
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def version_ge(version: str, other: str) -> bool:
    return parse_version(version) >= parse_version(other)


def version_info(cni_version: str = CURRENT_VERSION, supported: Tuple[str, ...] = SUPPORTED_VERSIONS) -> Dict[str, Any]:
    return {"cniVersion": cni_version, "supportedVersions": list(supported)}


def dumps(obj: Any) -> str:
    """Results and errors the way the Go library prints them: 4-space indent, no trailing newline."""
    return json.dumps(obj, indent=4)


# ---------------------------------------------------------------------------
# Result types. The internal form is the 1.1.0 shape; results are read from
# JSON of any version by config.result (Go's decoding rules) and converted
# on the way out (to_dict).


# A call asks the family of the same few addresses and routes many times
# (every result check and route loop): each text is parsed once. A text that
# does not parse raises every time (lru_cache keeps no exception).
@functools.lru_cache(maxsize=512)
def ip_family(address: str) -> int:
    """4 or 6 for an address with or without prefix."""
    return ipaddress.ip_interface(address).version


@functools.lru_cache(maxsize=512)
def _route_dst(dst: str) -> Tuple[int, int]:
    """(family, prefix length) of a route destination."""
    net = ipaddress.ip_network(dst, strict=False)
    return net.version, net.prefixlen


@dataclass
class Interface:
    """An interface of a result (`interfaces[]`)."""

    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int = 0
    socket_path: str = ""
    pci_id: str = ""

    def to_dict(self, v1: bool) -> Dict[str, Any]:
        out: Dict[str, Any] = {"name": self.name}
        if self.mac:
            out["mac"] = self.mac
        if v1 and self.mtu:
            out["mtu"] = self.mtu
        if self.sandbox:
            out["sandbox"] = self.sandbox
        if v1 and self.socket_path:
            out["socketPath"] = self.socket_path
        if v1 and self.pci_id:
            out["pciID"] = self.pci_id
        return out


@dataclass
class IPConfig:
    """An address of a result (`ips[]`), with its gateway and interface index."""

    address: str  # CIDR form: "10.1.2.3/24"
    gateway: str = ""
    interface: Optional[int] = None

    @property
    def version(self) -> int:
        return ip_family(self.address)

    def to_dict(self, with_version: bool) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if with_version:
            out["version"] = str(self.version)
        if self.interface is not None:
            out["interface"] = self.interface
        out["address"] = self.address
        if self.gateway:
            out["gateway"] = self.gateway
        return out


_ROUTE_EXTRAS = (("mtu", "mtu"), ("advmss", "advmss"), ("priority", "priority"), ("table", "table"), ("scope", "scope"))


@dataclass
class Route:
    """A route of a result or of an IPAM config (`routes[]`)."""

    dst: str
    gw: str = ""
    mtu: int = 0
    advmss: int = 0
    priority: int = 0
    table: Optional[int] = None
    scope: Optional[int] = None

    @property
    def version(self) -> int:
        return _route_dst(self.dst)[0]

    def is_default(self) -> bool:
        return _route_dst(self.dst)[1] == 0

    def to_dict(self, extras: bool = True) -> Dict[str, Any]:
        out: Dict[str, Any] = {"dst": self.dst}
        if self.gw:
            out["gw"] = self.gw
        if extras:
            for key, attr in _ROUTE_EXTRAS:
                value = getattr(self, attr)
                if value:
                    out[key] = value
        return out


@dataclass
class DNS:
    """The `dns` of a result or a netconf."""

    nameservers: List[str] = field(default_factory=list)
    domain: str = ""
    search: List[str] = field(default_factory=list)
    options: List[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out


@dataclass
class Result:
    """A CNI result in its richest (1.1.0) shape."""

    cni_version: str = CURRENT_VERSION
    interfaces: List[Interface] = field(default_factory=list)
    ips: List[IPConfig] = field(default_factory=list)
    routes: List[Route] = field(default_factory=list)
    dns: DNS = field(default_factory=DNS)

    # -- output --------------------------------------------------------------
    def to_dict(self, version: str) -> Dict[str, Any]:
        """The result as the config's cniVersion asks for it."""
        if version not in SUPPORTED_VERSIONS:
            raise CNIError(ERR_INCOMPATIBLE_VERSION, "cannot convert result to unsupported version %r" % version)
        if version in ("0.1.0", "0.2.0"):
            return self._to_020(version)
        v1 = version_ge(version, "1.0.0")
        out: Dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [i.to_dict(v1) for i in self.interfaces]
        if self.ips:
            out["ips"] = [ip.to_dict(with_version=not v1) for ip in self.ips]
        if self.routes:
            out["routes"] = [r.to_dict() for r in self.routes]
        # libcni < 1.2 always printed "dns": {}; 1.2+ omits an empty one for 1.x.
        if not (v1 and self.dns.is_empty()):
            out["dns"] = self.dns.to_dict()
        return out

    def _to_020(self, version: str) -> Dict[str, Any]:
        # Lossy by spec: first address of each family; routes follow their family.
        out: Dict[str, Any] = {"cniVersion": version}
        found = False
        for fam, key in ((4, "ip4"), (6, "ip6")):
            ip = next((i for i in self.ips if i.version == fam), None)
            if ip is None:
                continue
            found = True
            block: Dict[str, Any] = {"ip": ip.address}
            if ip.gateway:
                block["gateway"] = ip.gateway
            routes = [r.to_dict(extras=False) for r in self.routes if r.version == fam]
            if routes:
                block["routes"] = routes
            out[key] = block
        if not found:
            raise CNIError(ERR_INCOMPATIBLE_VERSION, "cannot convert: no valid IP addresses")
        out["dns"] = self.dns.to_dict()
        return out
