# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What is on a CNI node, and what is wrong with it: cni_facts' gathering.

Read-only. Each part answers one question the seed's operator worked out
by hand: which plugins and spec versions are installed (VERSION, never
source code), which config a runtime uses and why, what lint says about
each, what the bridge and the owned routes look like, and which IPAM
leases nobody holds any more.

Leak rule. host-local leases live in <dataDir>/<network>/<ip> holding
"<containerID>\\r\\n<ifname>". The libcni result cache (<cache_dir>/results,
written by containerd, CRI-O, cnitool and cni_attach on every successful
ADD and removed on DEL) says which attachments a runtime believes exist.
A lease is *held* when a cached attachment of the same network, container
ID and ifname (any ifname for a legacy ID-only lease) exists and its netns
is alive: the path is a namespace on nsfs (a bind mount under
/var/run/netns or /proc/<pid>/ns/net). It is *leaked* when no such
attachment is cached (DEL ran but IPAM was not released, or the cache was
lost) or the attachment's netns is gone (the pod's namespace disappeared
without DEL). A cached attachment with no netns recorded counts as held:
nothing proves it gone. Caveats, reported with each lease: a runtime that
does not write the libcni cache (or writes it to another cache_dir) makes
its leases look leaked, and an ADD in flight holds its lease a moment
before its result is cached.

This module sits above the runtime layer's usual imports: it reads the
host-local store (ipam.store, standard library only) and, for bridges and
routes, netlink through net.* (pyroute2, imported only when asked for).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ..spec import CNIError
from ..net.netns import netns_alive
from .attach import result_addresses
from ..runtime.cache import CacheEntry, list_attachments
from ..runtime.confdir import ConfFileStatus, NetworkConfigList, find_active, scan
from . import lint
from .lint import canonical_type, lint_network, overlapping_networks
from .netconf_file import data_dirs
from ..runtime.pluginexec import PluginExec
from ..runtime.versions import PluginVersions, plugin_versions

SUBSETS = ("plugins", "configs", "bridges", "routes", "leases", "attachments")
DEFAULT_BRIDGE = "cni0"  # the bridge plugin's default when `bridge` is unset


@dataclass
class FactsRequest:
    conf_dir: str = "/etc/cni/net.d"
    bin_dirs: List[str] = field(default_factory=lambda: ["/opt/cni/bin"])
    cache_dir: str = "/var/lib/cni"
    route_protocol: int = 77
    route_table: int = 254
    gather: Set[str] = field(default_factory=lambda: set(SUBSETS))


def subsets(requested: Iterable[str]) -> Set[str]:
    """The `gather` option -> the parts to gather ("all" means every one)."""
    wanted = set(requested)
    return set(SUBSETS) if not wanted or "all" in wanted else wanted


# ---------------------------------------------------------------------------
# plugins


def plugin_report(bin_dirs: Sequence[str], versions: Dict[str, PluginVersions], plugin_exec: Optional[PluginExec] = None) -> Dict[str, Any]:
    """Every executable in the bin dirs with its VERSION answer, in CNI_PATH order.

    A name found in an earlier dir shadows later ones (libcni takes the first).
    """
    dirs = []
    plugins = []
    agents: List[Dict[str, Any]] = []
    seen: Set[str] = set()
    for d in bin_dirs:
        dirs.append({"path": d, "exists": os.path.isdir(d)})
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                continue
            agent = agent_report(path)
            if agent is not None:  # our node agent: not a plugin, never exec'd with VERSION
                agents.append(agent)
                continue
            if path not in versions:
                versions[path] = plugin_versions(path, plugin_exec)
            entry = versions[path].as_dict()
            entry.update(dir=d, shadowed=name in seen)
            seen.add(name)
            plugins.append(entry)
    return {
        "bin_dirs": dirs,
        "plugins": plugins,
        "not_answering": [p["path"] for p in plugins if not p["answers"]],
        "agent": agents[0] if agents else None,
    }


def agent_report(path: str) -> Optional[Dict[str, Any]]:
    """The nodenet agent launcher at `path` and the agent serving this netns (None: not an agent launcher)."""
    from ..agent.client import AgentUnreachable, stats
    from ..agent.shim import read_header

    header = read_header(path)
    if header is None or not header["agent"]:
        return None
    installed = os.path.basename(header["rdir"])
    report: Dict[str, Any] = {"path": path, "port": int(header["port"]), "installed_runtime": installed, "running": False}
    try:
        counters = stats(int(header["port"]), header["run_dir"])
    except (AgentUnreachable, OSError, ValueError) as e:
        report["reason"] = str(e)
        return report
    report.update({k: counters.get(k) for k in ("pid", "digest", "calls", "errors", "refused", "in_flight", "started")})
    report.update(running=True, current=str(counters.get("digest", ""))[:16] == installed)
    return report


# ---------------------------------------------------------------------------
# configs


def plugin_support(
    net: NetworkConfigList, bin_dirs: Sequence[str], versions: Dict[str, PluginVersions], plugin_exec: Optional[PluginExec] = None
) -> List[Dict[str, Any]]:
    """Each plugin type the list names (IPAM included) and whether it speaks the list's cniVersion."""
    wanted = net.cni_version or "0.1.0"
    out = []
    for row in lint.plugin_support(net, bin_dirs, versions, plugin_exec):
        out.append(
            {
                "index": row.index,
                "role": row.role,
                "type": row.type,
                "path": row.path,
                "supportedVersions": list(row.answer.supported_versions) if row.answer else [],
                "supported": row.runs(wanted),
                "error": row.problem(wanted, bin_dirs),
            }
        )
    return out


def bridges_of(net: NetworkConfigList) -> List[str]:
    return [str(p.get("bridge") or DEFAULT_BRIDGE) for p in net.plugins if canonical_type(str(p.get("type", ""))) == "bridge"]


def active_report(conf_dir: str, statuses: Sequence[ConfFileStatus]) -> Dict[str, Any]:
    """Which file a runtime uses and why (containerd: the first; CRI-O: the first valid)."""
    if not statuses or statuses[0].kind == "dir":
        why = statuses[0].error if statuses else "no .conf, .conflist or .json file in %s" % conf_dir
        return {"file": "", "name": "", "valid": False, "reason": why}
    first = statuses[0]
    if first.valid and first.conf is not None:
        try:
            reason = find_active(conf_dir).reason
        except CNIError as e:  # changed under our feet
            reason = "first file in lexical order (%s)" % e
        return {"file": first.path, "name": first.conf.name, "valid": True, "reason": reason}
    fallback = next((s for s in statuses if s.valid and s.conf is not None), None)
    reason = "the first file in lexical order is invalid (%s): containerd fails to load the network instead of skipping it" % first.error
    if fallback is not None:
        reason += "; CRI-O skips invalid files and would use %s (network %r)" % (fallback.path, fallback.conf.name if fallback.conf else "")
    return {"file": first.path, "name": "", "valid": False, "reason": reason}


def config_report(
    conf_dir: str,
    statuses: Sequence[ConfFileStatus],
    bin_dirs: Sequence[str],
    versions: Dict[str, PluginVersions],
    plugin_exec: Optional[PluginExec] = None,
) -> Dict[str, Any]:
    configs = []
    for status in statuses:
        row = status.as_dict()
        row.update(findings=[], plugin_support=[], versions_ok=False, data_dirs=[], bridges=[])
        if status.valid and status.conf is not None:
            net = status.conf
            row["findings"] = [f.as_dict() for f in lint_network(net, bin_dirs, versions, plugin_exec)]
            row["plugin_support"] = plugin_support(net, bin_dirs, versions, plugin_exec)
            row["versions_ok"] = all(p["supported"] for p in row["plugin_support"])
            row["data_dirs"] = data_dirs(net)
            row["bridges"] = bridges_of(net)
        configs.append(row)
    nets = [s.conf for s in statuses if s.valid and s.conf is not None]
    return {
        "configs": configs,
        "active": active_report(conf_dir, statuses),
        "findings": [f.as_dict() for f in overlapping_networks(nets)],
    }


# ---------------------------------------------------------------------------
# node state (netlink)


def bridge_report(nets: Sequence[NetworkConfigList], ipr: Any) -> List[Dict[str, Any]]:
    from .bridge_state import read_state

    named: Dict[str, List[str]] = {}
    for net in nets:
        for name in bridges_of(net):
            named.setdefault(name, [])
            if net.name not in named[name]:
                named[name].append(net.name)
    out = []
    for name, networks in sorted(named.items()):
        state = read_state(ipr, name)
        state["networks"] = networks
        out.append(state)
    return out


def route_report(ipr: Any, protocol: int, table: int) -> Dict[str, Any]:
    from .owned_routes import read_owned

    routes = read_owned(ipr, protocol, table)
    return {
        "protocol": protocol,
        "table": table,
        "routes": [{"subnet": r.subnet, "via": r.via, "metric": r.metric, "route": r.describe()} for r in routes],
    }


# ---------------------------------------------------------------------------
# attachments and leases


def attachment_report(entries: Sequence[CacheEntry], configured: Set[str], alive: Callable[[str], bool] = netns_alive) -> List[Dict[str, Any]]:
    out = []
    for e in entries:
        live = alive(e.netns) if e.netns else False
        out.append(
            {
                "path": e.path,
                "network": e.network_name,
                "container_id": e.container_id,
                "ifname": e.ifname,
                "netns": e.netns,
                "netns_alive": live,
                "stale": bool(e.netns) and not live,
                "configured": e.network_name in configured,
                "ips": result_addresses(e.result),
                "cni_args": [[k, v] for k, v in e.cni_args],
                "capability_args": e.capability_args,
                "result": e.result,
            }
        )
    return out


def classify_leases(
    leases: Sequence[Tuple[str, str, Any]],
    entries: Sequence[CacheEntry],
    alive: Callable[[str], bool] = netns_alive,
) -> List[Dict[str, Any]]:
    """Apply the leak rule (module docstring) to (data_dir, network, Lease) triples."""
    exact: Dict[Tuple[str, str, str], CacheEntry] = {}
    by_id: Dict[Tuple[str, str], CacheEntry] = {}
    for e in entries:
        exact[(e.network_name, e.container_id, e.ifname)] = e
        by_id.setdefault((e.network_name, e.container_id), e)
    out = []
    for data_dir, network, lease in leases:
        entry = exact.get((network, lease.container_id, lease.ifname)) if lease.ifname else by_id.get((network, lease.container_id))
        row = {
            "data_dir": data_dir,
            "network": network,
            "ip": lease.ip,
            "container_id": lease.container_id,
            "ifname": lease.ifname,
            "path": lease.path,
            "attachment": entry.path if entry is not None else "",
            "netns": entry.netns if entry is not None else "",
        }
        if entry is None:
            row.update(leaked=True, reason="no cached attachment of (%s, %s, %s)" % (network, lease.container_id, lease.ifname or "any ifname"))
        elif not entry.netns:
            row.update(leaked=False, reason="held by cached attachment %s (no netns recorded)" % entry.path)
        elif not alive(entry.netns):
            row.update(leaked=True, reason="netns %s of cached attachment %s is gone (deleted without DEL)" % (entry.netns, entry.path))
        else:
            row.update(leaked=False, reason="held by cached attachment %s, netns alive" % entry.path)
        out.append(row)
    return out


def lease_sources(nets: Sequence[NetworkConfigList]) -> List[Dict[str, Any]]:
    """Every network directory under each dataDir a config references: the
    configs' own networks, and any other network found there (a removed
    config's leases are exactly what leaks)."""
    configured: Dict[str, Set[str]] = {}
    for net in nets:
        for d in data_dirs(net):
            configured.setdefault(d, set()).add(net.name)
    out = []
    for data_dir, names in sorted(configured.items()):
        found = set(names)
        try:
            found |= {n for n in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, n))}
        except OSError:
            pass
        for network in sorted(found):
            out.append({"data_dir": data_dir, "network": network, "configured": network in names, "exists": os.path.isdir(os.path.join(data_dir, network))})
    return out


def lease_report(nets: Sequence[NetworkConfigList], entries: Sequence[CacheEntry], alive: Callable[[str], bool] = netns_alive) -> Dict[str, Any]:
    from ..ipam.store import list_leases

    sources = lease_sources(nets)
    triples = []
    for src in sources:
        found = list_leases(src["data_dir"], src["network"])
        src["leases"] = len(found)
        triples += [(src["data_dir"], src["network"], lease) for lease in found]
    leases = classify_leases(triples, entries, alive)
    for src in sources:
        src["leaked"] = sum(1 for row in leases if row["leaked"] and row["data_dir"] == src["data_dir"] and row["network"] == src["network"])
    return {"data_dirs": sources, "leases": leases, "leaked_leases": [row for row in leases if row["leaked"]]}


# ---------------------------------------------------------------------------


def gather(req: FactsRequest, plugin_exec: Optional[PluginExec] = None, ipr_factory: Optional[Callable[[], Any]] = None) -> Dict[str, Any]:
    """ansible_facts.cni. A part that cannot be read is reported under
    `errors` and the others are still gathered."""
    wanted = req.gather
    facts: Dict[str, Any] = {
        "conf_dir": req.conf_dir,
        "bin_dirs": list(req.bin_dirs),
        "cache_dir": req.cache_dir,
        "gathered": [s for s in SUBSETS if s in wanted],
        "errors": {},
    }
    versions: Dict[str, PluginVersions] = {}
    statuses = scan(req.conf_dir)
    nets = [s.conf for s in statuses if s.valid and s.conf is not None]

    def part(name: str, fn: Callable[[], Any]) -> None:
        if name not in wanted:
            return
        try:
            fn()
        except Exception as e:  # diagnosis: report the part, keep gathering  # noqa: BLE001
            facts["errors"][name] = "%s: %s" % (type(e).__name__, e)

    part("plugins", lambda: facts.update(plugin_report(req.bin_dirs, versions, plugin_exec)))
    part("configs", lambda: facts.update(config_report(req.conf_dir, statuses, req.bin_dirs, versions, plugin_exec)))
    if "configs" in wanted and "active" not in facts:
        # lint failed (netaddr missing on a stock node?): which file is active still holds
        part("configs", lambda: facts.update(active=active_report(req.conf_dir, statuses)))

    entries: List[CacheEntry] = []
    if wanted & {"attachments", "leases"}:
        try:
            entries = list_attachments(req.cache_dir)
        except CNIError as e:
            facts["errors"]["attachments"] = str(e)
    configured = {n.name for n in nets}

    def attachments() -> None:
        rows = attachment_report(entries, configured)
        facts.update(attachments=rows, stale_attachments=[r for r in rows if r["stale"]])

    part("attachments", attachments)
    part("leases", lambda: facts.update(lease_report(nets, entries)))

    if wanted & {"bridges", "routes"}:
        try:
            ipr = ipr_factory() if ipr_factory else _iproute()
        except Exception as e:  # noqa: BLE001 - pyroute2 missing or netlink refused
            for name in ("bridges", "routes"):
                if name in wanted:
                    facts["errors"][name] = "cannot open netlink: %s" % e
            return facts
        try:
            part("bridges", lambda: facts.update(bridges=bridge_report(nets, ipr)))
            part("routes", lambda: facts.update(routes=route_report(ipr, req.route_protocol, req.route_table)))
        finally:
            ipr.close()
    return facts


def _iproute() -> Any:
    """The agent's synchronous rtnetlink socket (net/rtnl.py): pyroute2's messages, no event loop per call."""
    from ..net.rtnl import Rtnl

    return Rtnl()
