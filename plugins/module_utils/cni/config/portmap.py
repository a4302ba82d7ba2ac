# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""portmap options and the runtime's portMappings (plugins/meta/portmap)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..spec import ERR_INVALID_NETCONF, CNIError
from .netconf import NetConf

PROTOCOLS = ("tcp", "udp", "sctp")
BACKENDS = ("iptables", "nftables")


@dataclass
class PortMapping:
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


def _bool(raw: Dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise CNIError(ERR_INVALID_NETCONF, "portmap field %r must be a boolean, got %r" % (key, value))
    return value


def _port(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise CNIError(ERR_INVALID_NETCONF, "%s must be a port number 1-65535, got %r" % (where, value))
    return value


def _conditions(raw: Dict[str, Any], key: str) -> List[str]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CNIError(ERR_INVALID_NETCONF, "portmap field %r must be a list of strings" % key)
    return list(value)


def parse_mappings(runtime_config: Dict[str, Any]) -> List[PortMapping]:
    value = runtime_config.get("portMappings")
    if value is None:
        return []
    if not isinstance(value, list):
        raise CNIError(ERR_INVALID_NETCONF, "runtimeConfig.portMappings must be a list")
    out = []
    for i, entry in enumerate(value):
        where = "runtimeConfig.portMappings[%d]" % i
        if not isinstance(entry, dict):
            raise CNIError(ERR_INVALID_NETCONF, "%s must be an object" % where)
        proto = entry.get("protocol") or "tcp"
        if not isinstance(proto, str) or proto.lower() not in PROTOCOLS:
            raise CNIError(ERR_INVALID_NETCONF, "%s.protocol must be one of %s, got %r" % (where, "/".join(PROTOCOLS), proto))
        host_ip = entry.get("hostIP") or ""
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except (ValueError, TypeError):
                raise CNIError(ERR_INVALID_NETCONF, "%s.hostIP %r is not an IP address" % (where, host_ip))
        out.append(
            PortMapping(
                host_port=_port(entry.get("hostPort"), where + ".hostPort"),
                container_port=_port(entry.get("containerPort"), where + ".containerPort"),
                protocol=proto.lower(),
                host_ip=host_ip,
            )
        )
    return out


def parse_portmap(conf: NetConf) -> PortMapConf:
    raw = conf.raw
    backend: Optional[str] = raw.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise CNIError(ERR_INVALID_NETCONF, "portmap field 'backend' must be one of %s, got %r" % ("/".join(BACKENDS), backend))
    bit = raw.get("markMasqBit")
    ext = raw.get("externalSetMarkChain") or ""
    if not isinstance(ext, str):
        raise CNIError(ERR_INVALID_NETCONF, "portmap field 'externalSetMarkChain' must be a string")
    if bit is not None and ext:
        raise CNIError(ERR_INVALID_NETCONF, "portmap fields 'markMasqBit' and 'externalSetMarkChain' are mutually exclusive")
    if bit is None:
        bit = 13
    if not isinstance(bit, int) or isinstance(bit, bool) or not 0 <= bit <= 31:
        raise CNIError(ERR_INVALID_NETCONF, "portmap field 'markMasqBit' must be between 0 and 31, got %r" % (bit,))
    iptables_only = [k for k in ("markMasqBit", "externalSetMarkChain") if raw.get(k) is not None]
    cond_style = {
        k: raw[k][0].startswith(("-", "!"))
        for k in ("conditionsV4", "conditionsV6")
        if isinstance(raw.get(k), list) and raw[k] and isinstance(raw[k][0], str)
    }
    if backend is None and (iptables_only or any(cond_style.values())):
        backend = "iptables"  # the options say which backend they were written for
    elif backend is None and cond_style:
        backend = "nftables"
    pm = PortMapConf(
        net=conf,
        backend=backend or "",  # "" = auto, resolved by the plugin (nftables when usable)
        snat=_bool(raw, "snat", True),
        masq_all=_bool(raw, "masqAll", False),
        mark_masq_bit=bit,
        external_set_mark_chain=ext,
        conditions_v4=_conditions(raw, "conditionsV4"),
        conditions_v6=_conditions(raw, "conditionsV6"),
        mappings=parse_mappings(conf.runtime_config),
    )
    if pm.backend == "nftables" and iptables_only:
        raise CNIError(ERR_INVALID_NETCONF, "nftables backend was requested but configuration contains iptables-specific options %s" % iptables_only)
    for key, conds in (("conditionsV4", pm.conditions_v4), ("conditionsV6", pm.conditions_v6)):
        if conds and pm.backend:
            ipt_style = conds[0].startswith(("-", "!"))
            if ipt_style != (pm.backend == "iptables"):
                raise CNIError(
                    ERR_INVALID_NETCONF,
                    "%s backend was requested but %r is written for the %s backend" % (pm.backend, key, "iptables" if ipt_style else "nftables"),
                )
    return pm
