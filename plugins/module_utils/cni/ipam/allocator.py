# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""host-local allocation over a Store: Go's loose round-robin per range set.

Matches plugins/ipam/host-local/backend/allocator/allocator.go and the
ADD/DEL loops of host-local's main.go: one address per range set, each set
allocated under its own hold of the store lock; the cursor starts after
last_reserved_ip.N when that address lies in the set, else at range 0's
rangeStart; gateways are skipped; every address is visited at most once,
crossing from one range to the next and wrapping. Error texts are Go's;
operational failures are code 999 like Go's ErrInternal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Dict, Iterator, List, Optional, Set, Tuple

from ..config.host_local import IPAMConfig, Range, RangeSet, RequestedIP, check_requested_ips, format_ip
from ..spec import ERR_INTERNAL, CNIError, IPConfig
from .store import Lease, Store, lease_content

if TYPE_CHECKING:  # pragma: no cover
    from netaddr import IPAddress


@dataclass
class Allocation:
    """An address leased in one range set."""

    ip: "IPAddress"
    range: Range
    range_set_index: int

    @property
    def text(self) -> str:
        return format_ip(self.ip)

    def ip_config(self) -> IPConfig:
        # IPAM results carry no `interface` index (SPEC.md section 5); the
        # gateway is always present because every range has one by default.
        return IPConfig(address="%s/%d" % (self.text, self.range.subnet.prefixlen), gateway=format_ip(self.range.gateway))


def preload() -> None:
    """The netaddr parts allocation imports on first use, now (host-local's
    `warm`, skel.Plugin, for a resident agent)."""
    from netaddr import AddrFormatError, IPAddress, IPNetwork  # noqa: F401


def _parse_ip(text: Optional[str]) -> Optional["IPAddress"]:
    from netaddr import AddrFormatError, IPAddress

    if not text:
        return None
    try:
        ip = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return None  # Go: net.ParseIP gives nil, round-robin restarts at rangeStart
    return ip.ipv4() if ip.version == 6 and ip.is_ipv4_mapped() else ip


def iter_candidates(range_set: RangeSet, last_reserved: Optional["IPAddress"]) -> Iterator[Tuple["IPAddress", Range]]:
    """Every non-gateway address of the set once, in Go's RangeIter order.

    If `last_reserved` lies in the set the walk starts right after it (so it
    comes last); otherwise at range 0's rangeStart.
    """
    from netaddr import IPAddress

    ranges = range_set.ranges
    index, cursor = 0, int(ranges[0].range_start)
    if last_reserved is not None:
        for i, r in enumerate(ranges):
            if r.contains(last_reserved):
                index, cursor = i, int(last_reserved) + 1
                if cursor > int(r.range_end):
                    index, cursor = (i + 1) % len(ranges), int(ranges[(i + 1) % len(ranges)].range_start)
                break
    total = sum(r.size() for r in ranges)
    version = range_set.version
    for _visit in range(total):
        r = ranges[index]
        if cursor != int(r.gateway):
            yield IPAddress(cursor, version=version), r
        if cursor >= int(r.range_end):
            index = (index + 1) % len(ranges)
            cursor = int(ranges[index].range_start)
        else:
            cursor += 1


def allocate_ip(
    store: Store,
    range_set: RangeSet,
    range_set_index: int,
    container_id: str,
    ifname: str,
    requested: Optional["IPAddress"] = None,
) -> Allocation:
    """Lease one address in one range set (Go's IPAllocator.Get), under the lock."""
    with store.locked():
        if requested is not None:
            return _allocate_requested(store, range_set, range_set_index, container_id, ifname, requested)

        # Repeated ADD is an error, not idempotent (plugins#327/#328).
        for lease in store.get_by_id(container_id, ifname):
            ip = _parse_ip(lease.ip)
            if ip is not None and range_set.contains(ip):
                raise CNIError(ERR_INTERNAL, "%s has been allocated to %s, duplicate allocation is not allowed" % (lease.ip, container_id))

        # The store's view is taken under the lock, so an address not in it
        # is free; skip the taken ones without a syscall each. link() still
        # decides (EEXIST) in case some writer ignores the lock.
        last = _parse_ip(store.last_reserved_ip(range_set_index))
        ranges: Dict[str, Range] = {}

        def free_candidates() -> Iterator[str]:
            for ip, r in iter_candidates(range_set, last):
                text = format_ip(ip)
                if not store.is_leased(text):
                    ranges[text] = r
                    yield text

        reserved = store.reserve_first(container_id, ifname, free_candidates(), range_set_index)
        if reserved is None:
            raise CNIError(ERR_INTERNAL, "no IP addresses available in range set: %s" % range_set)
        ip = _parse_ip(reserved)
        if ip is None:  # cannot happen: every candidate was spelled by format_ip
            raise CNIError(ERR_INTERNAL, "reserved address %r does not parse" % reserved)
        return Allocation(ip=ip, range=ranges[reserved], range_set_index=range_set_index)


def _allocate_requested(
    store: Store, range_set: RangeSet, index: int, container_id: str, ifname: str, requested: "IPAddress"
) -> Allocation:
    # Go does no duplicate check on this path.
    r = range_set.range_for(requested)
    if r is None:
        raise CNIError(ERR_INTERNAL, "%s not in range set %s" % (format_ip(requested), range_set))
    if requested == r.gateway:
        raise CNIError(ERR_INTERNAL, "requested ip %s is subnet's gateway" % format_ip(requested))
    if not store.reserve(container_id, ifname, format_ip(requested), index):
        raise CNIError(ERR_INTERNAL, "requested IP address %s is not available in range set %s" % (format_ip(requested), range_set))
    return Allocation(ip=requested, range=r, range_set_index=index)


def allocate_all(store: Store, conf: IPAMConfig, container_id: str, ifname: str) -> List[Allocation]:
    """host-local ADD: one address per range set, in order; all or nothing.

    Requested IPs are matched to sets first (config errors, nothing leased).
    On a failure in set k the leases made for sets 0..k-1 by this call are
    released; unlike Go we release exactly those files, not every lease of
    (id, ifname), so a duplicate-ADD error cannot free the original lease.
    """
    requested: Dict[int, RequestedIP] = check_requested_ips(conf)
    done: List[Allocation] = []
    for index, range_set in enumerate(conf.range_sets):
        req = requested.get(index)
        try:
            done.append(allocate_ip(store, range_set, index, container_id, ifname, req.ip if req else None))
        except CNIError as e:
            _roll_back(store, done, container_id, ifname)
            raise CNIError(e.code, "failed to allocate for range %d: %s" % (index, e.msg), e.details)
    return done


def _roll_back(store: Store, allocations: List[Allocation], container_id: str, ifname: str) -> None:
    if not allocations:
        return
    key = lease_content(container_id, ifname)
    with store.locked():
        for allocation in allocations:
            lease = store.lease_at(allocation.text)
            if lease is not None and lease.key == key:
                store.release(lease)


def release_all(store: Store, conf: IPAMConfig, container_id: str, ifname: str) -> List[str]:
    """host-local DEL: release (id, ifname) once per range set, each under the lock.

    Like Go, each pass scans the whole directory (a lease from any range
    matches) and falls back to legacy id-only files when nothing matched.
    Errors from all sets are joined with ";". Returns the released addresses.
    """
    released: List[str] = []
    errors: List[str] = []
    for _range_set in conf.range_sets:
        try:
            with store.locked():
                released += store.release_by_id(container_id, ifname)
        except CNIError as e:
            errors.append(e.msg)
        except OSError as e:
            errors.append(str(e))
    if errors:
        raise CNIError(ERR_INTERNAL, ";".join(errors))
    return released


def release_by_id(store: Store, container_id: str, ifname: str) -> List[str]:
    """host-local DEL without a usable range config: one pass over the whole
    directory finds every lease of (id, ifname), whatever its range."""
    try:
        with store.locked():
            return store.release_by_id(container_id, ifname)
    except OSError as e:
        raise CNIError(ERR_INTERNAL, str(e))


def find_allocation(store: Store, container_id: str, ifname: str) -> List[Lease]:
    """Leases held by (id, ifname), or legacy leases of id (CHECK; Go's FindByID)."""
    with store.locked():
        return store.find_by_id(container_id, ifname)


def collect_garbage(store: Store, valid: Collection[Tuple[str, str]]) -> Tuple[List[Lease], List[str]]:
    """GC (spec 1.1.0): release every lease whose (id, ifname) is not in `valid`.

    A legacy id-only lease stays if any valid attachment has its id. Keeps
    going on errors; returns (released leases, error messages). Temp files
    left by a crashed writer are removed too (the lock proves them stale).
    """
    valid_pairs: Set[Tuple[str, str]] = {(cid.strip(), ifn) for cid, ifn in valid}
    valid_ids = {cid for cid, _ifname in valid_pairs}
    released: List[Lease] = []
    errors: List[str] = []
    with store.locked():
        store.remove_stale_temp_files()
        for lease in store.leases():
            keep = lease.container_id in valid_ids if lease.legacy else (lease.container_id, lease.ifname) in valid_pairs
            if keep:
                continue
            try:
                if store.release(lease):
                    released.append(lease)
            except OSError as e:
                errors.append("failed to release %s: %s" % (lease.ip, e.strerror or e))
    return released, errors
