# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters deriving the cni_node role's per-node data (no logic in Jinja):
node addresses per family, peer routes, subnet requests, host-local ranges,
probe targets and the probe/verify report tables."""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible.errors import AnsibleError, AnsibleFilterError

FAMILY_KEYS = {4: "ipv4", 6: "ipv6"}


def _host(hostvars: Any, name: str) -> Mapping[str, Any]:
    try:
        return hostvars[name]
    except KeyError as e:
        raise AnsibleFilterError("host %s is not in the inventory" % name) from e


def _split(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, (list, tuple)):
        return [part for item in value for part in _split(item)]
    return [str(value)]


def addresses_by_family(value: Any, what: str) -> Dict[str, str]:
    """'172.31.250.1,fd00::1' or a list -> {'ipv4': ..., 'ipv6': ...}."""
    out: Dict[str, str] = {}
    for text in _split(value):
        try:
            addr = ipaddress.ip_address(text.split("/", maxsplit=1)[0])
        except ValueError as e:
            raise AnsibleFilterError(
                "%s: %r is not an IP address; set cni_node_address to the node's address(es) on the node network, "
                "one per family (peers route pod subnets via it)" % (what, text)
            ) from e
        key = FAMILY_KEYS[addr.version]
        if key in out:
            raise AnsibleFilterError("%s has two %s addresses (%s and %s); give one per family" % (what, key, out[key], addr))
        out[key] = str(addr)
    return out


def node_addresses(hosts: Sequence[str], hostvars: Any) -> Dict[str, Dict[str, str]]:
    """Each node's address(es) other nodes route its pod subnets via:
    cni_node_address when set for the host, else node_address (+ node_address_ipv6,
    as the lab writes them), else ansible_host, else the inventory name."""
    out = {}
    for name in hosts:
        hv = _host(hostvars, name)
        value = hv.get("cni_node_address")
        if value in (None, "", []):
            value = [hv.get("node_address") or hv.get("ansible_host") or name, hv.get("node_address_ipv6") or ""]
        out[name] = addresses_by_family(value, "cni_node_address of %s" % name)
    return out


def peer_routes(pod_subnets: Mapping[str, Mapping[str, Any]], node: str, addresses: Mapping[str, Mapping[str, str]]) -> List[Dict[str, str]]:
    """Routes on `node` to every other node's pod subnets, each via that node's
    address of the same family."""
    routes = []
    for peer in sorted(pod_subnets):
        if peer == node:
            continue
        for subnet in pod_subnets[peer].get("subnets") or [pod_subnets[peer]["subnet"]]:
            key = FAMILY_KEYS[ipaddress.ip_network(subnet).version]
            via = (addresses.get(peer) or {}).get(key)
            if not via:
                raise AnsibleFilterError(
                    "node %s has the %s pod subnet %s but no %s address to route it via; "
                    "add one to its cni_node_address (e.g. '172.31.250.2,fd00:31:250::2')" % (peer, key, subnet, key)
                )
            routes.append({"subnet": subnet, "via": via})
    return routes


def subnet_requests(hosts: Sequence[str], hostvars: Any, delegated: Sequence[Mapping[str, Any]] = ()) -> Dict[str, Dict[str, Any]]:
    """Input of pod_subnets: each host's explicit cni_node_pod_subnet and the
    subnets persisted on it. A host read its own file into cni_node_subnet_read
    (a registered `raw: cat` (rc 0 = read, else no file) or slurp (failed = no
    file)); hosts outside the play were read by a delegated loop whose item is
    the host (`delegated`)."""
    read = {}
    for res in delegated or []:
        read[res.get("item")] = res
    out = {}
    for name in hosts:
        hv = _host(hostvars, name)
        res = hv.get("cni_node_subnet_read") or read.get(name) or {}
        content = ""
        if res.get("failed") or res.get("skipped"):
            pass
        elif res.get("content"):
            content = base64.b64decode(res["content"]).decode("utf-8", "replace")
        elif res.get("rc") == 0:
            # without the package look-up's lines (subnets.yml reads both in one command)
            content = "".join(line for line in str(res.get("stdout") or "").splitlines(True) if not line.startswith(PACKAGE_LINE))
        out[name] = {"explicit": hv.get("cni_node_pod_subnet") or "", "persisted": content}
    return out


PACKAGE_LINE = "package "


def packages_missing(read: Mapping[str, Any], packages: Sequence[str]) -> List[str]:
    """The packages of `packages` that the node's look-up (subnets.yml's read,
    a registered raw whose output has a "package <status> <name>" line per
    package dpkg knows) did not report installed: all of them when there was
    no look-up or no dpkg (the package manager then decides)."""
    installed = set()
    for line in str((read or {}).get("stdout") or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == PACKAGE_LINE.strip() and fields[1] == "installed":
            installed.add(fields[2])
    return [name for name in packages or [] if str(name) not in installed]


def host_local_ranges(entry: Mapping[str, Any]) -> List[List[Dict[str, str]]]:
    """host-local `ranges`: one range set per family, gateway without prefix."""
    subnets = entry.get("subnets") or [entry["subnet"]]
    gateways = entry.get("gateways") or [entry["gateway"]]
    return [[{"subnet": s, "gateway": g.split("/")[0]}] for s, g in zip(subnets, gateways)]


FORWARDING_SYSCTLS = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}


def boot_sysctls(sysctls: Mapping[str, Any], entry: Mapping[str, Any]) -> Dict[str, Any]:
    """The sysctls to persist for boot: the given ones, plus forwarding of
    every family the node has a pod subnet in (what cni_bridge sets now)."""
    out = dict(sysctls)
    for subnet in entry.get("subnets") or [entry["subnet"]]:
        try:
            family = ipaddress.ip_network(subnet, strict=False).version
        except ValueError as e:
            raise AnsibleFilterError("boot_sysctls: %r is not a subnet" % (subnet,)) from e
        out.setdefault(FORWARDING_SYSCTLS[family], 1)
    return out


def _attach_output(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    for line in reversed(raw.get("stdout_lines") or str(raw["stdout"]).splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError as e:
                raise AnsibleFilterError("probe_addresses: the probe's output is not the attach result JSON (%s): %r" % (e, line[:200])) from e
            if isinstance(value, dict):
                return value
    raise AnsibleFilterError("probe_addresses: the probe's output holds no attach result JSON: %r" % str(raw["stdout"])[:200])


def probe_addresses(attach_result: Mapping[str, Any]) -> Dict[str, List[str]]:
    """A cni_attach result's pod addresses and gateways, without prefix: the
    module's registered result, or the probe's raw task, on whose stdout the
    plugin runtime's attach entry point printed that result as JSON, one line
    (roles/cni_node/tasks/probe_attach.yml; its last line that is a JSON
    object: over SSH with a tty the node's stderr is in stdout too)."""
    attached = attach_result or {}
    if "result" not in attached and attached.get("stdout"):
        attached = _attach_output(attached)
    ips = (attached.get("result") or {}).get("ips") or []
    return {
        "ips": [ip["address"].split("/")[0] for ip in ips],
        "gateways": [ip["gateway"] for ip in ips if ip.get("gateway")],
    }


def probe_targets(gateways: Sequence[str], peers: Sequence[str], hostvars: Any, node: Optional[str] = None) -> List[Dict[str, str]]:
    """What a probe pings: its own gateway(s), then every peer's probe address(es)."""
    targets = [{"name": "gateway", "ip": gw} for gw in gateways]
    for peer in peers:
        if peer == node:
            continue
        for ip in _host(hostvars, peer).get("cni_node_probe_ips") or []:
            targets.append({"name": peer, "ip": ip})
    return targets


def probe_batch_targets(attached: Mapping[str, Any], reference: str, reference_attached: Mapping[str, Any], node: str) -> List[str]:
    """site.yml's probe (roles/cni_node/tasks/probe_batch.yml): what this node's
    probe pings, as files/probe-ping.sh's NAME=IP arguments: its own gateways,
    then the reference node's probe addresses (none when this node is the
    reference). Both from the attach results as registered (probe_addresses);
    a failed or skipped attach has no addresses."""

    def addresses(result: Mapping[str, Any]) -> Dict[str, List[str]]:
        if not result or result.get("failed") or result.get("skipped"):
            return {"ips": [], "gateways": []}
        return probe_addresses(result)

    targets = ["gateway=%s" % gw for gw in addresses(attached)["gateways"]]
    if reference and reference != node:
        targets += ["%s=%s" % (reference, ip) for ip in addresses(reference_attached)["ips"]]
    return targets


def probe_results(lines: Sequence[str], targets: Sequence[Mapping[str, str]]) -> Dict[str, bool]:
    """The ping task's lines ("ok <ip>" / "failed <ip>", files/probe-ping.sh) -> {'<name> <ip>': reachable}.

    A target without an "ok" line did not answer (also when the task died early).
    """
    answered = set()
    for line in lines or []:
        verdict, _sep, ip = str(line).strip().partition(" ")
        if verdict == "ok":
            answered.add(ip)
    return {"%s %s" % (t["name"], t["ip"]): t["ip"] in answered for t in targets or []}


def probe_failures(results: Mapping[str, bool]) -> List[str]:
    return [target for target, ok in (results or {}).items() if not ok]


def node_table(hosts: Sequence[str], hostvars: Any) -> List[str]:
    """verify.yml's table of nodes: address(es), pod subnet(s), probe address(es)."""
    fmt = "%-18s %-34s %-36s %s"
    lines = [fmt % ("node", "node address", "pod subnets", "probe")]
    addresses = node_addresses(hosts, hostvars)
    requests = subnet_requests(hosts, hostvars)
    for name in hosts:
        subnets = _split(requests[name]["persisted"])
        probe = _host(hostvars, name).get("cni_node_probe_ips") or []
        lines.append(fmt % (name, ",".join(addresses[name].values()), ",".join(subnets), ",".join(probe)))
    return lines


def probe_table(hosts: Sequence[str], hostvars: Any) -> List[str]:
    """verify.yml's table of pings: from, probe address(es), target, result."""
    fmt = "%-18s %-34s %-36s %s"
    lines = [fmt % ("from", "probe", "to", "result")]
    for name in hosts:
        hv = _host(hostvars, name)
        for target, ok in (hv.get("cni_node_probe_results") or {}).items():
            lines.append(fmt % (name, ",".join(hv.get("cni_node_probe_ips") or []), target, "ok" if ok else "FAILED"))
    return lines


# the role's registered results of the tasks that install or (re)start what a probe pod goes through
CHANGE_RESULTS = ("cni_node_plugin_install", "cni_node_packages_result", "cni_node_agent_lab",
                  "cni_node_agent_systemd_started", "cni_node_agent_systemd_restarted")


def node_changed(hv: Mapping[str, Any]) -> bool:
    """The cni_node role changed something on the node that a probe checks: the
    plugins, the packages, the node agent (started or restarted), or a part of
    the node state other than the persisted subnets and the boot files (from the
    results the role registered there; none on a node its check found current)."""
    for key in CHANGE_RESULTS:
        if (hv.get(key) or {}).get("changed"):
            return True
    state = hv.get("cni_node_state_result") or {}
    return bool(set(state.get("changed_parts") or []) - {"pod_subnets", "boot"})


def node_converged(hv: Mapping[str, Any]) -> bool:
    """The cni_node role found the node current (its check, cni_node_check) or its converge task
    ran on the node and passed (neither yet on a node of a later batch)."""
    if node_current(hv.get("cni_node_check")):
        return True
    state = hv.get("cni_node_state_result") or {}
    return bool(state) and not state.get("skipped") and not state.get("failed")


def node_current(check: Any) -> bool:
    """The role's check (a registered nodenet.cni.cni_node_check result) found the node current:
    then the role skipped its install, agent and converge tasks there."""
    check = check or {}
    return bool(check.get("current")) and not check.get("skipped") and not check.get("failed")


def installed_runtime(check: Any, install: Any) -> Dict[str, Any]:
    """The plugin runtime as the cni_node role left it on the node, as cni_plugin's result
    (runtime_dir, digest, ...): the check's (cni_node_check's `plugin`, cni_plugin's no-change
    result) where the check found the node current, else the install task's (cni_plugin's
    registered result; {} where neither ran, e.g. `--tags probe`)."""
    if node_current(check):
        return dict(check.get("plugin") or {})
    install = install or {}
    return {} if install.get("skipped") else dict(install)


def plugin_runtime_dir(options: Mapping[str, Any]) -> str:
    """The runtime dir nodenet.cni.cni_plugin installs for these options with this controller's
    plugin bundle (install_check's plan of them, the module's own rule); "" where only the
    module can tell (options it would judge itself)."""
    from ansible_collections.nodenet.cni.plugins.module_utils import install_check
    from ansible_collections.nodenet.cni.plugins.plugin_utils.node_actions import plugin_bundle

    try:
        digest = plugin_bundle()["digest"]
    except AnsibleError as e:
        raise AnsibleFilterError("plugin_runtime_dir: %s" % e.message) from e
    plan = install_check.plan(dict(options or {}), digest)
    return plan.rdir if plan is not None else ""


def probe_hosts(batch: Sequence[str], hostvars: Any, mode: str = "changed") -> List[str]:
    """The nodes of a roll-out batch to probe: cni_node_probe `always`, `never`,
    or `changed` (the nodes where the role changed something, node_changed)."""
    if mode not in ("changed", "always", "never"):
        raise AnsibleFilterError("cni_node_probe must be changed, always or never, got %r" % (mode,))
    if mode == "never":
        return []
    if mode == "always":
        return list(batch)
    return [name for name in batch if node_changed(_host(hostvars, name))]


def probe_reference(probing: Sequence[str], hosts: Sequence[str], hostvars: Any) -> str:
    """The node whose probe the probing nodes ping across the node network: a
    converged node that is not being probed itself (so every probing node's
    path to another node is checked), else the first probing node."""
    if not probing:
        return ""
    for name in hosts:
        if name not in probing and node_converged(_host(hostvars, name)):
            return name
    return probing[0]


def agent_status(result: Mapping[str, Any]) -> Dict[str, Any]:
    """The node agent's `--status` JSON from a registered command's output
    (its last line that is a JSON object); {} when the task was skipped (check
    mode) or printed none (no agent serves)."""
    for line in reversed((result or {}).get("stdout_lines") or []):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError as e:
                raise AnsibleFilterError("agent_status: the agent's status is not JSON: %r" % line) from e
            if isinstance(value, dict):
                return value
    return {}


class FilterModule:
    def filters(self):
        return {
            "node_addresses": node_addresses,
            "peer_routes": peer_routes,
            "subnet_requests": subnet_requests,
            "packages_missing": packages_missing,
            "host_local_ranges": host_local_ranges,
            "boot_sysctls": boot_sysctls,
            "probe_addresses": probe_addresses,
            "probe_hosts": probe_hosts,
            "probe_reference": probe_reference,
            "probe_targets": probe_targets,
            "probe_batch_targets": probe_batch_targets,
            "probe_results": probe_results,
            "probe_failures": probe_failures,
            "node_table": node_table,
            "probe_table": probe_table,
            "agent_status": agent_status,
            "installed_runtime": installed_runtime,
            "plugin_runtime_dir": plugin_runtime_dir,
        }
