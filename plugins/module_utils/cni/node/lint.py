# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lint a network configuration list for the mistakes operators make.

Every plugin config is validated by the same parsers the plugins use (so
"lint passes" means "ADD will not reject the config"), and the installed
plugins are asked, by exec'ing VERSION like libcni's ValidateNetworkList,
whether they speak the list's cniVersion — no reading of source code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..config.netconf import parse_netconf
from ..spec import CNIError
from ..runtime.confdir import NetworkConfigList
from ..runtime.pluginexec import PluginExec
from ..runtime.versions import PluginVersions, plugin_versions

ERROR = "error"
WARNING = "warning"
# our installed names carry this prefix; the options are the reference's
KNOWN_PREFIX = "nodenet-"


@dataclass
class Finding:
    level: str  # "error" | "warning"
    rule: str  # stable id, e.g. "version-unsupported"
    msg: str
    plugin: Optional[int] = None  # index in the list's plugins
    # the networks a cross-network finding is about: who it concerns is data, not text in msg
    networks: Tuple[str, ...] = ()

    def as_dict(self) -> Dict[str, Any]:
        return {"level": self.level, "rule": self.rule, "msg": self.msg, "plugin": self.plugin}


def canonical_type(plugin_type: str) -> str:
    """'nodenet-bridge' and 'bridge' both mean the bridge plugin's options."""
    return plugin_type[len(KNOWN_PREFIX) :] if plugin_type.startswith(KNOWN_PREFIX) else plugin_type


def find_binary(plugin_type: str, bin_dirs: Sequence[str]) -> Optional[str]:
    for d in bin_dirs:
        path = os.path.join(d, plugin_type)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def plugin_stdin(net: NetworkConfigList, plugin: Dict[str, Any]) -> Dict[str, Any]:
    """What the plugin would receive (libcni injects the list's name and version)."""
    raw = dict(plugin)
    raw["name"] = net.name
    raw["cniVersion"] = net.cni_version
    return raw


def _validate_options(raw: Dict[str, Any], index: int) -> List[Finding]:
    """Run our own parsers for the plugin's type and its IPAM, each on its own."""
    findings: List[Finding] = []

    def failed(e: CNIError) -> None:
        findings.append(Finding(ERROR, "invalid-config", "plugins[%d] (%s): %s" % (index, raw.get("type"), e), index))

    try:
        conf = parse_netconf(raw)
    except CNIError as e:
        failed(e)
        return findings
    kind = canonical_type(conf.type)
    try:
        if kind == "bridge":
            from ..config.bridge import parse_bridge_conf

            parse_bridge_conf(raw)
        elif kind == "portmap":
            from ..config.portmap import parse_portmap

            parse_portmap(conf)
    except CNIError as e:
        failed(e)
    if canonical_type(conf.ipam_type) == "host-local":
        from ..config.host_local import load_ipam_config

        try:
            findings += _lint_host_local(raw, load_ipam_config(conf), index)
        except CNIError as e:
            failed(e)
    return findings


def _raw_ranges(ipam_raw: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The range objects as written, in host-local's order (legacy subnet first)."""
    out: List[Dict[str, Any]] = []
    if ipam_raw.get("subnet"):
        out.append(ipam_raw)
    for rs in ipam_raw.get("ranges") or []:
        out += [r for r in rs if isinstance(r, dict)] if isinstance(rs, list) else []
    return out


def _lint_host_local(raw: Dict[str, Any], ipam: Any, index: int) -> List[Finding]:
    findings = []
    ranges = [r for rs in ipam.range_sets for r in rs.ranges]
    for r, written in zip(ranges, _raw_ranges(raw.get("ipam") or {})):
        # With default bounds the gateway is network+1 = rangeStart and host-local
        # skips it by design; only explicit bounds around the gateway are a mistake.
        explicit = written.get("rangeStart") or written.get("rangeEnd")
        if explicit and r.range_start <= r.gateway <= r.range_end:
            findings.append(
                Finding(
                    WARNING,
                    "gateway-in-range",
                    "plugins[%d].ipam: gateway %s of %s lies inside the allocation range %s; host-local skips it, "
                    "but a rangeStart/rangeEnd that excludes it says what you mean" % (index, r.gateway, r.subnet, r),
                    index,
                )
            )
    default_gw = bool(raw.get("isDefaultGateway"))
    defaults = [route for route in ipam.routes if route.is_default() and not route.gw]
    if default_gw and defaults:
        findings.append(
            Finding(
                WARNING,
                "duplicate-default-route",
                "plugins[%d]: ipam.routes has %s and isDefaultGateway is true; the Go bridge plugin (v1.x) fails ADD with "
                "'file exists' on this, nodenet's bridge installs one default route. Drop one of the two." % (index, ", ".join(r.dst for r in defaults)),
                index,
            )
        )
    return findings


@dataclass
class Support:
    """One plugin type a list names (IPAM included): where it is installed and what VERSION answered."""

    index: int  # in the list's plugins
    role: str  # "plugin" | "ipam"
    type: str
    path: str = ""  # empty: not in the bin dirs
    answer: Optional[PluginVersions] = None

    def runs(self, cni_version: str) -> bool:
        """Installed, answers VERSION and speaks `cni_version`."""
        return bool(self.answer is not None and self.answer.answers and self.answer.supports(cni_version))

    def problem(self, cni_version: str, bin_dirs: Sequence[str]) -> str:
        """Why it does not run (cni_facts' wording); "" when it does."""
        if self.answer is None:
            return "not installed in %s" % ":".join(bin_dirs)
        if not self.answer.answers:
            return self.answer.error
        return "" if self.answer.supports(cni_version) else "does not support cniVersion %s" % cni_version


def plugin_support(
    net: NetworkConfigList,
    bin_dirs: Sequence[str],
    versions_cache: Optional[Dict[str, PluginVersions]] = None,
    plugin_exec: Optional[PluginExec] = None,
) -> List[Support]:
    """Find each plugin type the list names in `bin_dirs` (CNI_PATH order) and ask it VERSION, once per path."""
    cache = versions_cache if versions_cache is not None else {}
    out = []
    for index, plugin in enumerate(net.plugins):
        types = [("plugin", str(plugin.get("type", "")))]
        ipam = plugin.get("ipam")
        if isinstance(ipam, dict) and ipam.get("type"):
            types.append(("ipam", str(ipam["type"])))
        for role, ptype in types:
            row = Support(index=index, role=role, type=ptype, path=find_binary(ptype, bin_dirs) or "")
            if row.path:
                if row.path not in cache:
                    cache[row.path] = plugin_versions(row.path, plugin_exec)
                row.answer = cache[row.path]
            out.append(row)
    return out


def _support_findings(row: Support, net: NetworkConfigList, bin_dirs: Sequence[str]) -> List[Finding]:
    wanted = net.cni_version or "0.1.0"
    if row.answer is None:
        return [Finding(ERROR, "plugin-missing", "plugin %r (plugins[%d]) is not in %s" % (row.type, row.index, ":".join(bin_dirs)), row.index)]
    if not row.answer.answers:
        return [Finding(ERROR, "plugin-no-version", "plugin %s does not answer VERSION: %s" % (row.path, row.answer.error), row.index)]
    if not row.answer.supports(net.cni_version):
        msg = "plugin %s does not support cniVersion %s (it supports %s)" % (row.path, wanted, ", ".join(row.answer.supported_versions))
        return [Finding(ERROR, "version-unsupported", msg, row.index)]
    return []


def lint_network(
    net: NetworkConfigList,
    bin_dirs: Sequence[str],
    versions_cache: Optional[Dict[str, PluginVersions]] = None,
    plugin_exec: Optional[PluginExec] = None,
) -> List[Finding]:
    """All findings for one list. `versions_cache` (path -> answer) avoids re-probing."""
    findings: List[Finding] = []
    support = plugin_support(net, bin_dirs, versions_cache, plugin_exec)
    for index, plugin in enumerate(net.plugins):
        findings += _validate_options(plugin_stdin(net, plugin), index)
        for row in support:
            if row.index == index:
                findings += _support_findings(row, net, bin_dirs)
    return findings


def subnets_of(net: NetworkConfigList) -> List[Any]:
    """The IPAM subnets a list allocates from (host-local style configs only)."""
    from ..config.host_local import load_ipam_config

    out = []
    for plugin in net.plugins:
        raw = plugin_stdin(net, plugin)
        try:
            conf = parse_netconf(raw)
            if canonical_type(conf.ipam_type) != "host-local":
                continue
            for rs in load_ipam_config(conf).range_sets:
                out += [r.subnet for r in rs.ranges]
        except CNIError:
            continue
    return out


def findings_about(findings: Sequence[Finding], network: str) -> List[Finding]:
    """The cross-network findings that concern `network` (by name, never by searching msg)."""
    return [f for f in findings if network in f.networks]


def overlapping_networks(nets: Sequence[NetworkConfigList]) -> List[Finding]:
    """Two different networks in one conf dir allocating from overlapping subnets."""
    findings = []
    subnets = [(n, s) for n in nets for s in subnets_of(n)]
    for i, (net_a, a) in enumerate(subnets):
        for net_b, b in subnets[i + 1 :]:
            if net_a.name != net_b.name and a.version == b.version and (a.first <= b.last and b.first <= a.last):
                findings.append(
                    Finding(
                        WARNING,
                        "overlapping-networks",
                        "network %r (%s) and network %r (%s) allocate from overlapping subnets" % (net_a.name, a, net_b.name, b),
                        networks=(net_a.name, net_b.name),
                    )
                )
    return findings
