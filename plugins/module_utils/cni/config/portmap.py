# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""portmap options and the runtime's portMappings (plugins/meta/portmap)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import List, Optional

from ..spec import ERR_INVALID_NETCONF, CNIError
from .addr import canonical_ip
from .decode import Fields
from .netconf import NetConf

PROTOCOLS = ("tcp", "udp", "sctp")
BACKENDS = ("iptables", "nftables")


@dataclass
class PortMapping:
    """One `portMappings` entry."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    @property
    def host_ip_family(self) -> int:
        return ipaddress.ip_address(self.host_ip).version if self.host_ip else 0

    def binds_any(self) -> bool:
        return not self.host_ip or ipaddress.ip_address(self.host_ip).is_unspecified


@dataclass
class PortMapConf:
    """portmap's netconf, decoded."""

    net: NetConf
    backend: str  # "iptables", "nftables" or "" (auto)
    snat: bool = True
    masq_all: bool = False
    mark_masq_bit: int = 13
    external_set_mark_chain: str = ""
    conditions_v4: List[str] = field(default_factory=list)
    conditions_v6: List[str] = field(default_factory=list)
    mappings: List[PortMapping] = field(default_factory=list)

    @property
    def mark(self) -> int:
        return 1 << self.mark_masq_bit


def parse_mappings(runtime_config: Fields) -> List[PortMapping]:
    """runtimeConfig.portMappings, keys as Go reads them (containerd sends `HostPort`)."""
    out = []
    for entry in runtime_config.objects("portMappings"):
        proto = entry.str("protocol") or "tcp"
        if proto.lower() not in PROTOCOLS:
            raise entry.error("protocol", "must be one of %s, got %r" % ("/".join(PROTOCOLS), proto))
        host_ip = entry.str("hostIP")
        out.append(
            PortMapping(
                host_port=_port(entry, "hostPort"),
                container_port=_port(entry, "containerPort"),
                protocol=proto.lower(),
                host_ip=canonical_ip(host_ip, entry.path("hostIP")) if host_ip else "",
            )
        )
    return out


def _port(entry: Fields, key: str) -> int:
    value = entry.int(key)
    if not 0 < value < 65536:
        raise entry.error(key, "must be a port number 1-65535, got %r" % (entry.get(key),))
    return value


def _conditions(raw: Fields, key: str) -> Optional[List[str]]:
    # Go: *[]string, so absent and null are "not set"
    return raw.strings(key) if raw.has(key) else None


def _conditions_backend(conds: Optional[List[str]]) -> str:
    # Go's detectBackendOfConditions: iptables conditions are options ("-s ...")
    if not conds:
        return ""
    return "iptables" if conds[0].startswith(("-", "!")) else "nftables"


def parse_portmap(conf: NetConf, lenient: bool = False) -> PortMapConf:
    """portmap's options and mappings. `lenient` (DEL): mappings that do not
    parse are recorded in conf.problems and read as none."""
    raw = conf.fields
    backend = raw.opt_str("backend")
    if backend is not None and backend not in BACKENDS:
        raise raw.error("backend", "must be one of %s, got %r" % ("/".join(BACKENDS), backend))
    bit = raw.opt_int("markMasqBit")
    ext = raw.opt_str("externalSetMarkChain")
    if bit is not None and ext is not None:
        raise CNIError(ERR_INVALID_NETCONF, "portmap fields 'markMasqBit' and 'externalSetMarkChain' are mutually exclusive")
    if bit is not None and not 0 <= bit <= 31:
        raise raw.error("markMasqBit", "must be between 0 and 31, got %r" % (bit,))
    iptables_only = [k for k, v in (("markMasqBit", bit), ("externalSetMarkChain", ext)) if v is not None]
    conds_v4, conds_v6 = _conditions(raw, "conditionsV4"), _conditions(raw, "conditionsV6")
    cond_style = {k: _conditions_backend(c) for k, c in (("conditionsV4", conds_v4), ("conditionsV6", conds_v6)) if c}
    if backend is None and (iptables_only or "iptables" in cond_style.values()):
        backend = "iptables"  # the options say which backend they were written for
    elif backend is None and cond_style:
        backend = "nftables"
    pm = PortMapConf(
        net=conf,
        backend=backend or "",  # "" = auto, resolved by the plugin (nftables when usable)
        snat=raw.bool("snat", True),  # Go: *bool, null = default true
        masq_all=raw.bool("masqAll", False),
        mark_masq_bit=13 if bit is None else bit,
        external_set_mark_chain=ext or "",
        conditions_v4=conds_v4 or [],
        conditions_v6=conds_v6 or [],
    )
    try:
        pm.mappings = parse_mappings(conf.runtime_config)
    except CNIError as e:
        if not lenient:
            raise
        conf.problems.append(e)
    if pm.backend == "nftables" and iptables_only:
        raise CNIError(ERR_INVALID_NETCONF, "nftables backend was requested but configuration contains iptables-specific options %s" % iptables_only)
    for key, style in cond_style.items():
        if pm.backend and style != pm.backend:
            raise CNIError(ERR_INVALID_NETCONF, "%s backend was requested but %r is written for the %s backend" % (pm.backend, key, style))
    return pm
