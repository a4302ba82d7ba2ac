# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bridge plugin's stdin, typed (plugins/main/bridge NetConf).

Every option of the reference bridge is here with its reference default.
Where Go's JSON decoder would silently accept something odd we reject it
with code 7 naming the field (a string "true" for a bool, a bool for an
int), because a typo in a netconf should fail the first ADD, not become
`false` on every node.

Strictness per verb: ADD and CHECK validate everything. DEL and GC check
the types (without them the config cannot be read) but not the combinations
and ranges that only matter when creating something (hairpin + promisc, VLAN
ranges, MAC syntax): a runtime must be able to DEL an attachment whose ADD
was refused, or it retries the teardown forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..names import ifname_problem
from ..spec import (
    DNS,
    ERR_INVALID_ENV,
    ERR_INVALID_NETCONF,
    CNIError,
    version_ge,
)
from .decode import Fields
from .netconf import NetConf, load_cni_args, parse_netconf

DEFAULT_BRIDGE = "cni0"
IPMASQ_BACKENDS = ("iptables", "nftables")
# Linux interface MTU bounds (IPv4 minimum, 16-bit field maximum); 0 = kernel default.
MIN_MTU = 68
MAX_MTU = 65535
MAX_VLAN = 4094

# compiled (and cached) by re on first use, not at import on every plugin exec
_MAC_PATTERN = r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$"
_MAC_DOT_PATTERN = r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$"


@dataclass
class BridgeConf:
    """A validated bridge netconf. Field names follow the JSON keys' meaning."""

    net: NetConf
    bridge: str = DEFAULT_BRIDGE
    is_gateway: bool = False
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    # "" means "choose at setup time" (net.ipmasq.default_backend): nftables
    # when `nft` works, else iptables. The Go plugin prefers iptables; we
    # prefer the backend that can be torn down without addresses and GC'd.
    ip_masq_backend: str = ""
    mtu: int = 0
    hairpin_mode: bool = False
    promisc_mode: bool = False
    vlan: int = 0
    vlan_trunk: List[int] = field(default_factory=list)
    preserve_default_vlan: bool = False
    enable_dad: bool = False
    mac_spoof_check: bool = False
    disable_container_interface: bool = False
    port_isolation: bool = False
    mac: str = ""

    @property
    def name(self) -> str:
        return self.net.name

    @property
    def cni_version(self) -> str:
        return self.net.cni_version

    @property
    def ipam_type(self) -> str:
        return self.net.ipam_type

    @property
    def is_layer3(self) -> bool:
        # L3 iff ipam.type is set; "ipam": {} is an L2 bridge (reference rule)
        return bool(self.net.ipam_type)

    @property
    def dns(self) -> DNS:
        return self.net.dns

    @property
    def vlan_filtering(self) -> bool:
        return self.vlan != 0 or bool(self.vlan_trunk)

    @property
    def vlan_gateway_name(self) -> str:
        """The host-side interface that carries the gateway address of a VLAN network."""
        return "%s.%d" % (self.bridge, self.vlan)


def parse_bridge_conf(raw: Dict[str, Any], cni_args: str = "", strict: bool = True) -> BridgeConf:
    """Validate a bridge plugin's stdin (already JSON-decoded) and CNI_ARGS.

    `strict` (ADD/CHECK) also checks option combinations, ranges and MAC
    syntax. Not strict (DEL/GC/STATUS), what only the runtime supplies
    (prevResult, runtimeConfig, args, CNI_ARGS) is not read at all: DEL
    needs none of it, and failing on it would strand libcni's DEL chain.
    """
    net = parse_netconf(raw, lenient=not strict)
    f = net.fields
    conf = BridgeConf(net=net)
    conf.bridge = f.str("bridge", DEFAULT_BRIDGE)
    conf.is_gateway = f.bool("isGateway")
    conf.is_default_gateway = f.bool("isDefaultGateway")
    if conf.is_default_gateway:
        conf.is_gateway = True  # a default gateway is a gateway (reference)
    conf.force_address = f.bool("forceAddress")
    conf.ip_masq = f.bool("ipMasq")
    conf.ip_masq_backend = f.str("ipMasqBackend", "")
    conf.mtu = f.int("mtu")
    conf.hairpin_mode = f.bool("hairpinMode")
    conf.promisc_mode = f.bool("promiscMode")
    conf.vlan = f.int("vlan")
    trunk = _trunk_entries(f)
    conf.preserve_default_vlan = f.bool("preserveDefaultVlan")
    conf.enable_dad = f.bool("enabledad")
    conf.mac_spoof_check = f.bool("macspoofchk")
    conf.disable_container_interface = f.bool("disableContainerInterface")
    conf.port_isolation = f.bool("portIsolation")
    if not strict:
        conf.vlan_trunk = _collect_trunk(trunk, strict=False)
        return conf
    # The runtime passes CNI_ARGS to every plugin; unknown keys are an error
    # unless IgnoreUnknown is set, as Go's LoadArgs does.
    conf.mac, mac_source = _container_mac(net, cni_args)

    validate_ifname(conf.bridge, "bridge")
    if conf.ip_masq_backend and conf.ip_masq_backend not in IPMASQ_BACKENDS:
        raise CNIError(
            ERR_INVALID_NETCONF,
            "unknown ipmasq backend %r in field 'ipMasqBackend' (use %s)" % (conf.ip_masq_backend, " or ".join(IPMASQ_BACKENDS)),
        )
    if conf.mtu and not MIN_MTU <= conf.mtu <= MAX_MTU:
        raise CNIError(ERR_INVALID_NETCONF, "invalid 'mtu' %d (must be 0 or between %d and %d)" % (conf.mtu, MIN_MTU, MAX_MTU))
    if not 0 <= conf.vlan <= MAX_VLAN:
        raise CNIError(ERR_INVALID_NETCONF, "invalid VLAN ID %d in field 'vlan' (must be between 0 and %d)" % (conf.vlan, MAX_VLAN))
    conf.vlan_trunk = _collect_trunk(trunk, strict=True)
    if conf.hairpin_mode and conf.promisc_mode:
        raise CNIError(ERR_INVALID_NETCONF, "cannot set hairpin mode and promiscuous mode at the same time ('hairpinMode', 'promiscMode')")
    if conf.disable_container_interface and conf.is_layer3:
        raise CNIError(ERR_INVALID_NETCONF, "cannot use IPAM when DisableContainerInterface flag is set ('disableContainerInterface' with 'ipam.type')")
    if conf.vlan and conf.is_gateway and conf.is_layer3:
        validate_ifname(conf.vlan_gateway_name, "bridge", "VLAN gateway interface %r (bridge name + '.' + vlan)" % conf.vlan_gateway_name)
    if conf.mac:
        conf.mac = _checked_mac(conf.mac, mac_source)
    # The 0.1.0/0.2.0 result can only carry addresses: an L2 ADD would do
    # all the work and then fail to print (reference). Refuse it up front.
    if not conf.is_layer3 and not version_ge(conf.cni_version or "0.1.0", "0.3.0"):
        raise CNIError(
            ERR_INVALID_NETCONF,
            "an L2 bridge (no 'ipam.type') has no IP addresses to report in a cniVersion %s result; use 0.3.0 or later" % (conf.cni_version or "0.1.0"),
        )
    return conf


def validate_ifname(name: str, key: str, what: str = "") -> str:
    """Kernel rules for an interface name, reported as a netconf error naming `key`."""
    what = what or "interface name %r" % name
    problem = ifname_problem(name)  # the one rule, in bytes
    if problem is not None:
        raise CNIError(ERR_INVALID_NETCONF, "field %r: %s %s" % (key, what, problem))
    return name


def normalize_mac(value: str, where: str = "MAC") -> str:
    """'AA-BB-CC-DD-EE-FF' / 'aabb.ccdd.eeff' -> 'aa:bb:cc:dd:ee:ff'; a unicast 48-bit MAC only."""
    if re.match(_MAC_PATTERN, value):
        hexdigits = re.sub(r"[:-]", "", value)
    elif re.match(_MAC_DOT_PATTERN, value):
        hexdigits = value.replace(".", "")
    else:
        raise CNIError(ERR_INVALID_NETCONF, "invalid %s address %r" % (where, value))
    hexdigits = hexdigits.lower()
    if int(hexdigits[:2], 16) & 1:
        raise CNIError(ERR_INVALID_NETCONF, "invalid %s address %r: a multicast address cannot be an interface address" % (where, value))
    if int(hexdigits, 16) == 0:
        raise CNIError(ERR_INVALID_NETCONF, "invalid %s address %r: all zeros" % (where, value))
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


def _trunk_entries(f: Fields) -> List[Tuple[Optional[int], Optional[int], Optional[int]]]:
    """vlanTrunk as (minID, maxID, id) triples (Go: *int each), types checked."""
    return [(t.opt_int("minID"), t.opt_int("maxID"), t.opt_int("id")) for t in f.objects("vlanTrunk")]


def _collect_trunk(entries: List[Tuple[Optional[int], Optional[int], Optional[int]]], strict: bool) -> List[int]:
    """The trunk's VLAN IDs, sorted and unique, with the reference's checks and messages."""
    vids = set()
    for min_id, max_id, single in entries:
        if min_id is not None and max_id is not None:
            if strict and not 0 < min_id <= MAX_VLAN:
                raise CNIError(ERR_INVALID_NETCONF, "incorrect trunk minID parameter in 'vlanTrunk': %d" % min_id)
            if strict and not 0 < max_id <= MAX_VLAN:
                raise CNIError(ERR_INVALID_NETCONF, "incorrect trunk maxID parameter in 'vlanTrunk': %d" % max_id)
            if strict and max_id < min_id:
                raise CNIError(ERR_INVALID_NETCONF, "minID is greater than maxID in trunk parameter 'vlanTrunk'")
            vids.update(range(max(min_id, 1), min(max_id, MAX_VLAN) + 1))
        elif strict and min_id is None and max_id is not None:
            raise CNIError(ERR_INVALID_NETCONF, "minID and maxID should be configured simultaneously, minID is missing in 'vlanTrunk'")
        elif strict and min_id is not None and max_id is None:
            raise CNIError(ERR_INVALID_NETCONF, "minID and maxID should be configured simultaneously, maxID is missing in 'vlanTrunk'")
        if single is not None:
            if strict and not 0 < single <= MAX_VLAN:
                raise CNIError(ERR_INVALID_NETCONF, "incorrect trunk id parameter in 'vlanTrunk': %d" % single)
            vids.add(single)
    return sorted(v for v in vids if 0 < v <= MAX_VLAN)


def _container_mac(net: NetConf, cni_args: str) -> Tuple[str, str]:
    """The requested container MAC and where it came from.

    CNI_ARGS MAC=, then args.cni.mac, then runtimeConfig.mac; later wins (reference).
    """
    mac, source = "", ""
    if cni_args:
        mac = load_cni_args(cni_args, ("MAC",)).get("MAC", "")
        source = "CNI_ARGS MAC" if mac else ""
    for fields, key in ((net.cni_args(), "mac"), (net.runtime_config, "mac")):
        value = fields.str(key)
        if value:
            mac, source = value, fields.path(key)
    return mac, source


def _checked_mac(value: str, source: str) -> str:
    try:
        return normalize_mac(value, "'%s'" % source if source != "CNI_ARGS MAC" else source)
    except CNIError as e:
        # A bad CNI_ARGS value is an environment error (code 4), not a netconf one.
        raise CNIError(ERR_INVALID_ENV if source == "CNI_ARGS MAC" else ERR_INVALID_NETCONF, e.msg)
