# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Leaked leases: the remedy (cni_gc).

cni_facts finds leaks with the rule in facts.py; this frees them, in the two
steps of libcni's GCNetworkList, with the runtime's result cache standing in
for the runtime's list of live sandboxes:

1. Every cached attachment whose netns is gone (the pod's namespace went
   without DEL: a runtime crash, a reboot) is deleted with a full chain DEL
   using its cached config, arguments and result, as libcni's GC does for
   attachments not in the valid set. That frees its lease, its host-side
   rules and its cache entry.
2. Every other lease the leak rule calls leaked (no cached attachment, or
   one whose netns is gone and whose DEL did not free it) is released in
   the host-local dataDir itself, deciding and releasing while holding the
   dataDir's lock (the same flock Go's and our host-local take), and never
   a lease younger than the grace period: an ADD in flight holds its lease
   a moment before its result is cached. Go's host-local shares the format
   and has no GC of its own.

Optionally (plugin_gc) the CNI GC verb then goes to the plugins of lists of
cniVersion >= 1.1.0, with the valid attachments explicitly: the cached ones
and the owners of every lease kept. Off by default, because the plugins
decide after the lock is released, so a lease taken in between is not in
the set.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ..ipam.store import Store, list_leases
from ..spec import ERR_INVALID_NETCONF, CNIError, version_ge
from ..net.netns import netns_alive
from ..runtime.cache import CacheEntry, list_attachments
from ..runtime.chain import ChainError, Runtime, RuntimeConf
from ..runtime.confdir import NetworkConfigList, scan
from .facts import classify_leases
from .netconf_file import data_dirs

DEFAULT_GRACE_SECONDS = 60.0


@dataclass
class GCRequest:
    conf_dir: str = "/etc/cni/net.d"
    bin_dirs: List[str] = field(default_factory=lambda: ["/opt/cni/bin"])
    cache_dir: str = "/var/lib/cni"
    networks: List[str] = field(default_factory=list)  # empty: every valid config in conf_dir
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    plugin_gc: bool = False


@dataclass
class GCOutcome:
    deleted_attachments: List[Dict[str, Any]] = field(default_factory=list)
    freed: List[Dict[str, Any]] = field(default_factory=list)
    kept: List[Dict[str, Any]] = field(default_factory=list)
    before: Dict[str, List[str]] = field(default_factory=dict)  # network -> lease lines
    after: Dict[str, List[str]] = field(default_factory=dict)
    networks: List[str] = field(default_factory=list)
    trace: List[Dict[str, Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.deleted_attachments or self.freed)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "changed": self.changed,
            "networks": self.networks,
            "deleted_attachments": self.deleted_attachments,
            "freed": self.freed,
            "kept": self.kept,
            "leases_before": self.before,
            "leases_after": self.after,
            "trace": self.trace,
            "notes": self.notes,
        }


def select_networks(conf_dir: str, names: Sequence[str]) -> List[NetworkConfigList]:
    """The valid configs of conf_dir (first of each name), or the named ones."""
    found: Dict[str, NetworkConfigList] = {}
    for status in scan(conf_dir):
        if status.valid and status.conf is not None and status.conf.name not in found:
            found[status.conf.name] = status.conf
    missing = [n for n in names if n not in found]
    if missing:
        raise CNIError(ERR_INVALID_NETCONF, "network: no valid config named %s in %s" % (", ".join(repr(n) for n in missing), conf_dir))
    return [found[n] for n in names] if names else [found[n] for n in sorted(found)]


def lease_line(row: Dict[str, Any]) -> str:
    return "%s %s %s" % (row["ip"], row["container_id"], row["ifname"] or "(any ifname)")


def _age(path: str, now: float) -> float:
    try:
        return now - os.stat(path).st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: nothing to protect


def _attachment_row(entry: CacheEntry, reason: str) -> Dict[str, Any]:
    return {"network": entry.network_name, "container_id": entry.container_id, "ifname": entry.ifname, "netns": entry.netns,
            "path": entry.path, "reason": reason}


class Collector:
    """One cni_gc run; check_mode decides exactly as a real run, changing nothing."""

    def __init__(self, req: GCRequest, check_mode: bool = False, alive: Callable[[str], bool] = netns_alive,
                 clock: Callable[[], float] = time.time) -> None:
        self.req = req
        self.check_mode = check_mode
        self.alive = alive
        self.clock = clock
        self.out = GCOutcome()

    def run(self) -> GCOutcome:
        for net in select_networks(self.req.conf_dir, self.req.networks):
            self.out.networks.append(net.name)
            self.collect(net)
        return self.out

    def _snapshot(self, net: NetworkConfigList) -> List[Tuple[str, str, Any]]:
        return [(d, net.name, lease) for d in data_dirs(net) for lease in list_leases(d, net.name)]

    def collect(self, net: NetworkConfigList) -> None:
        entries = list_attachments(self.req.cache_dir, network=net.name)
        self.out.before[net.name] = [lease_line(r) for r in classify_leases(self._snapshot(net), entries, self.alive)]
        stale = [e for e in entries if e.netns and not self.alive(e.netns)]
        freed_by_del: Set[str] = set()
        # 1. libcni GC's first half: DEL every cached attachment whose netns is gone
        rows = classify_leases(self._snapshot(net), entries, self.alive)
        for entry in stale:
            reason = "netns %s is gone (deleted without DEL)" % entry.netns
            held = [r for r in rows if r["attachment"] == entry.path]
            if self.check_mode:
                ok = True
            else:
                ok = self._delete(net, entry)
            if ok:
                self.out.deleted_attachments.append(_attachment_row(entry, reason))
                for r in held:
                    freed_by_del.add(r["path"])
                    self.out.freed.append(dict(self._lease_row(r), reason="DEL of cached attachment %s: %s" % (entry.path, reason)))
        # 2. the remaining leaked leases, decided and released under the dataDir lock
        for data_dir in data_dirs(net):
            self._release_leaked(net, data_dir, freed_by_del)
        self.out.after[net.name] = (
            sorted(set(self.out.before[net.name]) - {lease_line(r) for r in self.out.freed if r["network"] == net.name})
            if self.check_mode
            else [lease_line(r) for r in classify_leases(self._snapshot(net), list_attachments(self.req.cache_dir, network=net.name), self.alive)]
        )
        # 3. optionally the plugins' own GC, with the valid set sent explicitly
        if self.req.plugin_gc and not self.check_mode:
            self._plugin_gc(net)

    def _lease_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        return {k: row[k] for k in ("network", "ip", "container_id", "ifname", "path", "data_dir")}

    def _delete(self, net: NetworkConfigList, entry: CacheEntry) -> bool:
        rt = RuntimeConf(entry.container_id, entry.netns, entry.ifname, list(entry.cni_args), dict(entry.capability_args), self.req.cache_dir)
        try:
            done = Runtime(self.req.bin_dirs).del_list(net, rt)
            self.out.trace += [r.as_dict() for r in done.trace]
            return True
        except ChainError as e:
            self.out.trace += [r.as_dict() for r in e.trace]
            self.out.errors.append("DEL of stale attachment %s %s failed: %s" % (entry.container_id, entry.ifname, e))
            return False

    def _release_leaked(self, net: NetworkConfigList, data_dir: str, already: Set[str]) -> None:
        if not os.path.isdir(os.path.join(data_dir, net.name)):
            return
        with Store(data_dir, net.name, create=False) as store, store.locked():
            # under the lock no ADD or DEL of this network runs: read the cache and the leases now
            entries = list_attachments(self.req.cache_dir, network=net.name)
            rows = classify_leases([(data_dir, net.name, lease) for lease in store.leases()], entries, self.alive)
            now = self.clock()
            for row in rows:
                if not row["leaked"] or (self.check_mode and row["path"] in already):
                    continue
                age = _age(row["path"], now)
                if age < self.req.grace_seconds:
                    self.out.kept.append(dict(self._lease_row(row), reason="%s, but only %.0fs old (grace %gs: an ADD may not have cached it yet)"
                                              % (row["reason"], age, self.req.grace_seconds)))
                    continue
                if not self.check_mode:
                    lease = next(le for le in store.leases() if le.path == row["path"]) if os.path.exists(row["path"]) else None
                    if lease is None or not store.release(lease):
                        continue
                self.out.freed.append(dict(self._lease_row(row), reason=row["reason"]))

    def _plugin_gc(self, net: NetworkConfigList) -> None:
        if not version_ge(net.cni_version or "0.1.0", "1.1.0"):
            self.out.notes.append("%s: cniVersion %s < 1.1.0, no GC verb for the plugins" % (net.name, net.cni_version or "0.1.0"))
            return
        valid: Set[Tuple[str, str]] = {(e.container_id, e.ifname) for e in list_attachments(self.req.cache_dir, network=net.name)}
        for _data_dir, _network, lease in self._snapshot(net):
            valid.add((lease.container_id, lease.ifname))
        try:
            done = Runtime(self.req.bin_dirs).gc_list(net, sorted(valid), self.req.cache_dir)
            self.out.trace += [r.as_dict() for r in done.trace]
        except ChainError as e:
            self.out.trace += [r.as_dict() for r in e.trace]
            self.out.errors.append("GC of %s failed: %s" % (net.name, e))


def collect(req: GCRequest, check_mode: bool = False, alive: Optional[Callable[[str], bool]] = None) -> GCOutcome:
    return Collector(req, check_mode, alive or netns_alive).run()
