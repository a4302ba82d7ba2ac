# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""host-local IPAM configuration: typed ranges, range sets, requested IPs.

Mirrors the Go plugin's config loading (plugins/ipam/host-local/backend/
allocator/config.go, range.go, range_set.go, dns.go): the same sources in
the same order, the same defaults, the same canonical forms and, where Go
has one, the same error text. Every rejection is a CNIError with code 7
(invalid netconf) or 4 (CNI_ARGS) whose message names the offending field,
e.g. "... (ipam.ranges[0][1].rangeStart)". Go reports all of these as 999.

Address math is netaddr's; netaddr is imported inside the functions that
need it so that VERSION and bad-JSON paths stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..spec import DNS, ERR_INVALID_ENV, ERR_INVALID_NETCONF, CNIError, Route, ip_family, version_ge
from .addr import parse_address
from .decode import Fields
from .netconf import NetConf, load_cni_args
from .result import parse_route

if TYPE_CHECKING:  # pragma: no cover - typing only
    from netaddr import IPAddress, IPNetwork

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
CNI_ARGS_KEYS = ("IP",)


# ---------------------------------------------------------------------------
# textual forms


def format_ip(ip: "IPAddress") -> str:
    """The address as Go's net.IP.String() spells it.

    Lease files are named with this, so it must be byte-identical to Go's
    spelling: RFC 5952 compressed IPv6 (what `ipaddress` prints; netaddr
    would print "::1.2.3.4" where Go prints "::102:304"), and IPv4-mapped
    IPv6 printed as plain IPv4, as Go does.
    """
    if ip.version == 4:
        return str(ip)
    if ip.is_ipv4_mapped():
        return str(ip.ipv4())
    import ipaddress

    return ipaddress.IPv6Address(int(ip)).compressed


def format_network(net: "IPNetwork") -> str:
    return "%s/%d" % (format_ip(net.ip), net.prefixlen)


def _where(text: str, where: str) -> str:
    return "%s (%s)" % (text, where) if where else text


def parse_ip(value: Any, where: str, code: int = ERR_INVALID_NETCONF) -> "IPAddress":
    """A bare address, canonicalised like Go's canonicalizeIP (IPv4-mapped -> IPv4).

    The accepting rules are config.addr's (Go's net.ParseIP: no "10.1", no
    leading zeros, no zone id, no space); netaddr carries the range math.
    """
    from netaddr import IPAddress

    if not isinstance(value, str):
        raise CNIError(code, _where("must be a string, got %s" % _json_type(value), where))
    try:
        ip = parse_address(value, "", code)
    except CNIError:
        raise CNIError(code, _where("invalid IP address: %s" % value, where))
    return IPAddress(int(ip), version=ip.version)


def parse_cidr(value: Any, where: str, code: int = ERR_INVALID_NETCONF) -> "IPNetwork":
    """"addr/prefix" with the host bits kept (Go's types.ParseCIDR keeps them too)."""
    from netaddr import IPNetwork

    if not isinstance(value, str):
        raise CNIError(code, _where("must be a string, got %s" % _json_type(value), where))
    addr, sep, prefix = value.partition("/")
    if not sep or not prefix.isdigit() or "/" in prefix:
        raise CNIError(code, _where("invalid CIDR address: %s" % value, where))
    try:
        ip = parse_ip(addr, where, code)
    except CNIError:
        raise CNIError(code, _where("invalid CIDR address: %s" % value, where))
    if ":" in addr and ip.version == 4:
        raise CNIError(code, _where("invalid CIDR address: %s (IPv4-mapped IPv6 networks are not supported)" % value, where))
    if int(prefix) > (32 if ip.version == 4 else 128):
        raise CNIError(code, _where("invalid CIDR address: %s" % value, where))
    return IPNetwork((int(ip), int(prefix)), version=ip.version)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean %s" % str(value).lower()
    if isinstance(value, (int, float)):
        return "number %r" % value
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    return "%r" % (value,)


# ---------------------------------------------------------------------------
# typed configuration


@dataclass
class Range:
    """One pool inside a range set, canonicalised (all four fields set)."""

    subnet: "IPNetwork"
    range_start: "IPAddress"
    range_end: "IPAddress"
    gateway: "IPAddress"
    where: str = ""  # the config path it came from, for messages

    @property
    def version(self) -> int:
        return self.subnet.version

    def contains(self, ip: "IPAddress") -> bool:
        # Go's Range.Contains: same family, inside the subnet, between start and end.
        return ip.version == self.version and self.range_start <= ip <= self.range_end

    def overlaps(self, other: "Range") -> bool:
        # Go compares the start..end intervals, not the subnets: two pools
        # carved out of one /24 may sit side by side.
        if self.version != other.version:
            return False
        return self.range_start <= other.range_end and other.range_start <= self.range_end

    def size(self) -> int:
        return int(self.range_end) - int(self.range_start) + 1

    def __str__(self) -> str:
        return "%s-%s" % (format_ip(self.range_start), format_ip(self.range_end))


@dataclass
class RangeSet:
    """A pool of ranges of one family; one address is leased per set."""

    ranges: List[Range]
    where: str = ""

    @property
    def version(self) -> int:
        return self.ranges[0].version

    def range_for(self, ip: "IPAddress") -> Optional[Range]:
        for r in self.ranges:
            if r.contains(ip):
                return r
        return None

    def contains(self, ip: "IPAddress") -> bool:
        return self.range_for(ip) is not None

    def overlaps(self, other: "RangeSet") -> bool:
        return any(a.overlaps(b) for a in self.ranges for b in other.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)


@dataclass
class RequestedIP:
    """An address the runtime asked for, and where it asked (for the error)."""

    ip: "IPAddress"
    where: str  # "CNI_ARGS IP", "args.cni.ips[0]", "runtimeConfig.ips[1]"
    code: int  # 4 when it came from CNI_ARGS, else 7


@dataclass
class IPAMConfig:
    """host-local's `ipam` section, decoded."""

    name: str  # the network name: state lives in <data_dir>/<name>
    cni_version: str
    type: str
    range_sets: List[RangeSet]
    routes: List[Route] = field(default_factory=list)
    data_dir: str = DEFAULT_DATA_DIR
    resolv_conf: str = ""
    requested_ips: List[RequestedIP] = field(default_factory=list)

    @property
    def network_dir(self) -> str:
        import os

        return os.path.join(self.data_dir, self.name)


# ---------------------------------------------------------------------------
# loading


def load_ipam_config(conf: NetConf, cni_args: str = "") -> IPAMConfig:
    """The whole ipam section, validated and canonicalised (Go's LoadIPAMConfig).

    Pure: reads no files and creates nothing, so a rejection leaves the
    dataDir untouched. ADD additionally calls check_requested_ips and
    read_resolv_conf before it creates anything.
    """
    if not conf.fields.has("ipam"):
        raise CNIError(ERR_INVALID_NETCONF, "IPAM config missing 'ipam' key")
    ipam = conf.ipam

    requested = _requested_ips(conf, cni_args)

    # Final order (config.go): runtimeConfig.ipRanges, then the legacy
    # single range, then ipam.ranges. Indexes below are post-prepend, so
    # "range set N" and last_reserved_ip.N agree with Go.
    raw_sets: List[Tuple[Any, str]] = []
    raw_sets += _raw_range_sets(conf.runtime_config.get("ipRanges"), "runtimeConfig.ipRanges")
    if ipam.get("subnet") not in (None, ""):
        legacy = {k: ipam.get(k) for k in ("subnet", "rangeStart", "rangeEnd", "gateway")}
        raw_sets.append(([legacy], "ipam"))
    raw_sets += _raw_range_sets(ipam.get("ranges"), "ipam.ranges")
    if not raw_sets:
        raise CNIError(ERR_INVALID_NETCONF, "no IP ranges specified (ipam.ranges)")

    range_sets = [_range_set(i, items, where) for i, (items, where) in enumerate(raw_sets)]

    # CNI 0.1.0/0.2.0 results carry one ip4 and one ip6 only.
    per_family = {4: 0, 6: 0}
    for rs in range_sets:
        per_family[rs.version] += 1
    if max(per_family.values()) > 1 and not version_ge(conf.cni_version or "0.1.0", "0.3.0"):
        raise CNIError(
            ERR_INVALID_NETCONF,
            "CNI version %s does not support more than 1 address per family (cniVersion)" % conf.cni_version,
        )

    for i, a in enumerate(range_sets):
        for j in range(i + 1, len(range_sets)):
            if a.overlaps(range_sets[j]):
                raise CNIError(ERR_INVALID_NETCONF, "range set %d overlaps with %d (%s, %s)" % (i, j, a.where, range_sets[j].where))

    data_dir, _name = load_store_location(conf)
    return IPAMConfig(
        name=conf.name,
        cni_version=conf.cni_version,
        type=ipam.str("type"),
        range_sets=range_sets,
        routes=_routes(ipam),
        data_dir=data_dir,
        resolv_conf=ipam.str("resolvConf"),
        requested_ips=requested,
    )


def load_store_location(conf: NetConf) -> Tuple[str, str]:
    """(dataDir, network name): all a DEL needs to release by container ID."""
    if not conf.fields.has("ipam"):
        raise CNIError(ERR_INVALID_NETCONF, "IPAM config missing 'ipam' key")
    data_dir = conf.ipam.str("dataDir") or DEFAULT_DATA_DIR
    if "\x00" in data_dir:
        raise CNIError(ERR_INVALID_NETCONF, "invalid path (ipam.dataDir)")
    return data_dir, conf.name


def check_requested_ips(conf: IPAMConfig) -> Dict[int, RequestedIP]:
    """Match requested IPs to range sets before anything is reserved (ADD only).

    Go discovers these after it has allocated (and then rolls back) with
    `failed to allocate all requested IPs: X`; the outcome is decided by
    the config alone, so we refuse up front and create nothing. Returns
    {range set index: requested IP}. DEL must not call this: a DEL with the
    same bad CNI_ARGS has to succeed.
    """
    matched: Dict[int, RequestedIP] = {}
    for req in conf.requested_ips:
        index = next((i for i, rs in enumerate(conf.range_sets) if rs.contains(req.ip)), None)
        if index is None:
            raise CNIError(
                req.code,
                "failed to allocate all requested IPs: %s (%s: not in any range set)" % (format_ip(req.ip), req.where),
            )
        if index in matched:
            raise CNIError(
                req.code,
                "failed to allocate all requested IPs: %s (%s: range set %d already has requested IP %s from %s)"
                % (format_ip(req.ip), req.where, index, format_ip(matched[index].ip), matched[index].where),
            )
        matched[index] = req
    return matched


def read_resolv_conf(path: str) -> DNS:
    """ipam.resolvConf parsed like Go's dns.go: nameserver appends, domain
    last wins, search/options accumulate; '#'/';' lines are comments."""
    dns = DNS()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise CNIError(ERR_INVALID_NETCONF, "cannot read resolv.conf %s: %s (ipam.resolvConf)" % (path, e.strerror or e))
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        key = fields[0]
        if key == "nameserver":
            dns.nameservers.append(fields[1])
        elif key == "domain":
            dns.domain = fields[1]
        elif key == "search":
            dns.search.extend(fields[1:])
        elif key == "options":
            dns.options.extend(fields[1:])
    return dns


# ---------------------------------------------------------------------------
# pieces


def _raw_range_sets(value: Any, where: str) -> List[Tuple[Any, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CNIError(ERR_INVALID_NETCONF, "must be a list of range sets, got %s (%s)" % (_json_type(value), where))
    return [(items, "%s[%d]" % (where, i)) for i, items in enumerate(value)]


def _range_set(index: int, items: Any, where: str) -> RangeSet:
    """Go's RangeSet.Canonicalize, wrapped as `invalid range set N: ...`."""

    def fail(text: str, at: str) -> CNIError:
        return CNIError(ERR_INVALID_NETCONF, "invalid range set %d: %s" % (index, _where(text, at)))

    if not isinstance(items, list):
        raise fail("must be a list of ranges, got %s" % _json_type(items), where)
    if not items:
        raise fail("empty range set", where)
    # The legacy set is written as "ipam.subnet", the others as "...[i][j].subnet".
    ranges = [_range(item, where if where == "ipam" else "%s[%d]" % (where, j), fail) for j, item in enumerate(items)]
    for r in ranges[1:]:
        if r.version != ranges[0].version:
            raise fail("mixed address families", "%s, %s" % (ranges[0].where, r.where))
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if a.overlaps(b):
                raise fail("subnets %s and %s overlap" % (a, b), "%s, %s" % (a.where, b.where))
    return RangeSet(ranges=ranges, where=where)


def _range(item: Any, where: str, fail) -> Range:
    """Go's Range.Canonicalize: defaults and sanity of one range."""
    if item is None:
        item = {}  # Go: a null element is a zero Range (and fails "missing subnet")
    if not isinstance(item, dict):
        raise fail("must be an object, got %s" % _json_type(item), where)
    fields = Fields(item)  # Go's key rule
    item = {key: fields.get(key) for key in ("subnet", "rangeStart", "rangeEnd", "gateway")}
    # A node's calls carry the same ranges again and again: each one is
    # canonicalised once (a Range is never changed after this; a range that
    # fails raises every time, nothing is kept for it).
    key = (item["subnet"], item["rangeStart"], item["rangeEnd"], item["gateway"], where)
    cacheable = all(value is None or isinstance(value, str) for value in key)
    if cacheable:
        kept = _RANGES.get(key)
        if kept is not None:
            return kept
    r = _canonical_range(item, where, fail)
    if cacheable:
        if len(_RANGES) >= _RANGES_MAX:
            _RANGES.clear()
        _RANGES[key] = r
    return r


_RANGES: Dict[Tuple[Optional[str], ...], Range] = {}
_RANGES_MAX = 256


def _canonical_range(item: Dict[str, Any], where: str, fail) -> Range:
    from netaddr import IPAddress

    sub_where = where + ".subnet"
    if item.get("subnet") in (None, ""):
        raise fail("missing subnet", sub_where)
    try:
        subnet = parse_cidr(item["subnet"], "")
    except CNIError as e:
        raise fail(e.msg, sub_where)
    bits = 32 if subnet.version == 4 else 128
    if subnet.prefixlen > bits - 2:
        # a /31 or /32 (/127, /128) has nothing to hand out
        raise fail("Network %s too small to allocate from" % format_network(subnet), sub_where)
    if subnet.ip != subnet.network:
        raise fail(
            "Network has host bits set. For a subnet mask of length %d the network address is %s"
            % (subnet.prefixlen, format_ip(subnet.network)),
            sub_where,
        )
    net = subnet.cidr
    first = IPAddress(int(net.network) + 1, version=net.version)

    def address(key: str) -> Optional["IPAddress"]:
        if item.get(key) in (None, ""):
            return None
        try:
            ip = parse_ip(item[key], "")
        except CNIError as e:
            raise fail(e.msg, "%s.%s" % (where, key))
        if ip.version != net.version:
            raise fail("IP %s is not the same protocol as subnet %s" % (format_ip(ip), format_network(net)), "%s.%s" % (where, key))
        return ip

    gateway = address("gateway")
    if gateway is None:
        gateway = first  # Go claims network + 1
    elif gateway not in net:
        raise fail("gateway %s not in network %s" % (format_ip(gateway), format_network(net)), where + ".gateway")

    # The default start is network + 1 even though that is the default
    # gateway: the iterator skips gateways, so the first lease is .2 (Go).
    start = address("rangeStart")
    if start is None:
        start = first
    elif start not in net:
        raise fail("RangeStart %s not in network %s" % (format_ip(start), format_network(net)), where + ".rangeStart")

    end = address("rangeEnd")
    if end is None:
        # IPv4: broadcast - 1; IPv6: the last address (Go's lastIP()).
        end = IPAddress(int(net.broadcast) - 1, version=4) if net.version == 4 else IPAddress(int(net.last), version=6)
    elif end not in net:
        raise fail("RangeEnd %s not in network %s" % (format_ip(end), format_network(net)), where + ".rangeEnd")
    if start > end:
        # Go accepts this and then iterates through the whole address space.
        raise fail("RangeStart %s is after RangeEnd %s" % (format_ip(start), format_ip(end)), where + ".rangeStart")
    return Range(subnet=net, range_start=start, range_end=end, gateway=gateway, where=where)


def _routes(ipam: Fields) -> List[Route]:
    """ipam.routes, returned verbatim in results (in Go's canonical spelling)."""
    routes: List[Route] = []
    for item in ipam.objects("routes"):
        route = parse_route(item)
        if route.gw and ip_family(route.gw) != ip_family(route.dst):
            raise item.error("gw", "gateway %s is not the family of %s" % (route.gw, route.dst))
        routes.append(route)
    return routes


def _requested_ips(conf: NetConf, cni_args: str) -> List[RequestedIP]:
    """CNI_ARGS IP=, then args.cni.ips, then runtimeConfig.ips (config.go order).

    A "/prefix" is accepted and ignored everywhere: the prefix comes from
    the range (Go accepts it in runtimeConfig.ips). IP= may hold a
    comma-separated list. Duplicates collapse like Go's map does.
    """
    found: List[RequestedIP] = []
    if cni_args:
        value = load_cni_args(cni_args, CNI_ARGS_KEYS).get("IP")
        if value is not None:
            for item in value.split(","):
                found.append(RequestedIP(_requested(item.strip(), "CNI_ARGS IP", ERR_INVALID_ENV), "CNI_ARGS IP", ERR_INVALID_ENV))
    for source, value in (("args.cni.ips", conf.cni_args().get("ips")), ("runtimeConfig.ips", conf.runtime_config.get("ips"))):
        if value is None:
            continue
        if not isinstance(value, list):
            raise CNIError(ERR_INVALID_NETCONF, "must be a list of IP addresses, got %s (%s)" % (_json_type(value), source))
        for i, item in enumerate(value):
            where = "%s[%d]" % (source, i)
            found.append(RequestedIP(_requested(item, where, ERR_INVALID_NETCONF), where, ERR_INVALID_NETCONF))
    unique: List[RequestedIP] = []
    seen = set()
    for req in found:
        if req.ip not in seen:
            seen.add(req.ip)
            unique.append(req)
    return unique


def _requested(value: Any, where: str, code: int) -> "IPAddress":
    if isinstance(value, str) and "/" in value:
        try:
            return parse_cidr(value, where, code).ip
        except CNIError:
            raise CNIError(code, "cannot understand ip: %s (%s)" % (value, where))
    try:
        return parse_ip(value, where, code)
    except CNIError:
        raise CNIError(code, "cannot understand ip: %s (%s)" % (value if isinstance(value, str) else _json_type(value), where))
