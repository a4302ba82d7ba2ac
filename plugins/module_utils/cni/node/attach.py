# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A throw-away "pod" on a node: scripts/priv-net-run.sh as declared state.

priv-net-run.sh makes a netns, runs exec-plugins.sh add, runs a command in
the netns, then DEL. cni_attach does the same with libcni's rules instead
of the script's: the config a runtime would pick (confdir.find_active), the
chain run by `Runtime` with prevResult and a trace of every exec, and the
result in libcni's cache, so DEL/CHECK work in a later call and from other
runtimes (cnitool, containerd) sharing the cache dir.

An attachment is identified by (name, ifname): `name` is the container ID
and, unless a netns is given, the name of the netns we make under
/var/run/netns. Which namespaces we made is remembered in a marker file
under <cache_dir>/nodenet-attach/, so `absent` never deletes a namespace
it did not create, and a leftover namespace of the same name is never
adopted silently. Failed ADDs are undone completely (the script's
`set -e` left the netns and the lease behind, cni.md 3.2).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..config.result import parse_result
from ..fileio import atomic_write, open_dir_nofollow
from ..invoke import ExecRecord, run_group
from ..names import valid_name
from ..net.netns import netns_alive
from ..spec import CNIError
from ..runtime.cache import CacheEntry, CacheError, delete_entry, list_attachments
from ..runtime.chain import ChainError, Runtime, RuntimeConf, validate_attachment
from ..runtime.confdir import ConfError, NetworkConfigList, find_active, parse_conf_list

NETNS_DIR = "/var/run/netns"
MARKER_DIR = "nodenet-attach"  # under cache_dir, next to libcni's results/
DEFAULT_COMMAND_TIMEOUT = 60


class AttachError(Exception):
    """Why the task fails. `option` names the module option at fault (when one
    is), `details` is returned with the failure (trace, config, cleanup)."""

    def __init__(self, msg: str, option: str = "", **details: Any) -> None:
        self.option = option
        self.details = details
        super().__init__("%s: %s" % (option, msg) if option else msg)


@dataclass
class AttachRequest:
    """The module's options, typed and validated (see `request_from_params`)."""

    name: str
    conf_dir: str
    bin_dirs: List[str]
    cache_dir: str
    network: Optional[str] = None
    netns: str = ""  # given by the user; "" means ours, /var/run/netns/<name>
    ifname: str = "eth0"
    cni_args: List[Tuple[str, str]] = field(default_factory=list)
    capability_args: Dict[str, Any] = field(default_factory=dict)
    command: List[str] = field(default_factory=list)
    command_timeout: int = DEFAULT_COMMAND_TIMEOUT

    @property
    def netns_path(self) -> str:
        return self.netns or os.path.join(NETNS_DIR, self.name)


@dataclass
class Outcome:
    """What a run did (or, in check mode, would do)."""

    changed: bool = False
    actions: List[str] = field(default_factory=list)
    result: Optional[Dict[str, Any]] = None
    config: Dict[str, Any] = field(default_factory=dict)
    netns: str = ""
    netns_created: bool = False  # the namespace is one cni_attach made
    cache_file: str = ""
    trace: List[ExecRecord] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    before: Dict[str, Any] = field(default_factory=dict)
    after: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "changed": self.changed,
            "actions": list(self.actions),
            "result": self.result,
            "config": dict(self.config),
            "netns": self.netns,
            "netns_created": self.netns_created,
            "cache_file": self.cache_file,
            "trace": [r.as_dict() for r in self.trace],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------
# options


def parse_cni_args(value: Optional[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """The `cni_args` dict -> CNI_ARGS pairs, refused where libcni's K=V;K=V would break."""
    pairs: List[Tuple[str, str]] = []
    for key, raw in (value or {}).items():
        val = "" if raw is None else str(raw)
        if isinstance(raw, bool):
            val = "true" if raw else "false"
        if not key or "=" in key or ";" in key:
            raise AttachError("key %r must be non-empty and hold no '=' or ';'" % key, "cni_args")
        if not val or ";" in val or "=" in val:
            raise AttachError("value of %r must be non-empty and hold no '=' or ';', got %r" % (key, val), "cni_args")
        pairs.append((str(key), val))
    return pairs


def request_from_params(p: Dict[str, Any]) -> AttachRequest:
    """Validate the options; every refusal names its option."""
    name = p["name"]
    if not valid_name(name) or len(name) > 200:
        raise AttachError(
            "%r is not a usable container ID and namespace name (letters, digits, '_', '.', '-', starting with a letter or digit)" % name,
            "name",
        )
    try:
        # libcni's pre-ADD rules for the interface name, with its messages
        validate_attachment(RuntimeConf(container_id=name, ifname=p["ifname"]), "network")
    except CNIError as e:
        raise AttachError("%r: %s" % (p["ifname"], e.msg), "ifname")
    netns = p.get("netns") or ""
    if netns and not os.path.isabs(netns):
        raise AttachError("%r must be an absolute path, e.g. /var/run/netns/<name> or /proc/<pid>/ns/net" % netns, "netns")
    network = p.get("network")
    if network is not None and not valid_name(network):
        raise AttachError("%r is not a valid network name" % network, "network")
    if not p["bin_dir"]:
        raise AttachError("needs at least one directory", "bin_dir")
    for key in ("conf_dir", "cache_dir"):
        if not p[key] or not os.path.isabs(p[key]):
            raise AttachError("%r must be an absolute path" % p[key], key)
    caps = p.get("capability_args") or {}
    try:
        json.dumps(caps)
    except (TypeError, ValueError) as e:
        raise AttachError("must be JSON data: %s" % e, "capability_args")
    command: List[str] = []
    if p.get("command"):
        try:
            command = shlex.split(p["command"])
        except ValueError as e:
            raise AttachError("%r cannot be split into arguments: %s" % (p["command"], e), "command")
    timeout = p.get("command_timeout", DEFAULT_COMMAND_TIMEOUT)
    if timeout is None or timeout <= 0:
        raise AttachError("must be a positive number of seconds, got %r" % timeout, "command_timeout")
    return AttachRequest(
        name=name,
        conf_dir=p["conf_dir"],
        bin_dirs=list(p["bin_dir"]),
        cache_dir=p["cache_dir"],
        network=network,
        netns=netns,
        ifname=p["ifname"],
        cni_args=parse_cni_args(p.get("cni_args")),
        capability_args=dict(caps),
        command=command,
        command_timeout=int(timeout),
    )


# ---------------------------------------------------------------------------
# namespaces


def _marker_path(cache_dir: str, name: str) -> str:
    return os.path.join(cache_dir, MARKER_DIR, name)


def read_marker(cache_dir: str, name: str) -> Optional[Dict[str, Any]]:
    """The record of a namespace cni_attach made for `name`, or None."""
    try:
        # O_NOFOLLOW: a planted symlink must not make us "own" (and delete) another namespace
        fd = os.open(_marker_path(cache_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("netns"), str) else None


def write_marker(cache_dir: str, name: str, netns: str) -> None:
    directory = os.path.join(cache_dir, MARKER_DIR)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.close(open_dir_nofollow(directory))  # refuse a symlinked marker dir
        # temp file + rename: a symlink planted at the marker's name is
        # replaced, never followed (O_TRUNC through it would truncate its target)
        data = json.dumps({"netns": netns, "created_by": "nodenet.cni.cni_attach"}).encode()
        atomic_write(_marker_path(cache_dir, name), data, 0o600)
    except OSError as e:
        raise AttachError("cannot record the namespace in %s: %s" % (directory, e.strerror), "cache_dir")


def delete_marker(cache_dir: str, name: str) -> None:
    try:
        os.unlink(_marker_path(cache_dir, name))
    except FileNotFoundError:
        pass


def create_netns(name: str) -> str:
    """`ip netns add <name>` through pyroute2 (the same bind mount under /var/run/netns)."""
    from pyroute2 import netns as prnetns

    try:
        prnetns.create(name)
    except Exception as e:  # pyroute2 re-raises the child's error by class name
        raise AttachError("cannot create network namespace %s: %s" % (name, e), "name")
    try:
        set_lo_up(name)
    except AttachError:
        remove_netns(name)
        raise
    return os.path.join(NETNS_DIR, name)


def set_lo_up(name: str) -> None:
    """A pod's lo is up, as containerd's own cni-loopback network leaves it
    (a new namespace starts with lo down)."""
    from ..net.link import ipr_in_netns

    try:
        # an rtnetlink socket opened inside the namespace (setns on this thread, and back), no
        # helper process: pyroute2's IPRoute(netns=...) forks one for each handle
        with ipr_in_netns(os.path.join(NETNS_DIR, name)) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    except Exception as e:  # NetlinkError, OSError, CNIError (no such namespace), IndexError (no lo)
        raise AttachError("cannot set lo up in network namespace %s: %s" % (name, e), "name")


def remove_netns(name: str) -> bool:
    """`ip netns delete <name>`, exact name only; False when there was none."""
    path = os.path.join(NETNS_DIR, name)
    if not os.path.lexists(path):
        return False
    from pyroute2 import netns as prnetns

    try:
        prnetns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise AttachError("cannot delete network namespace %s: %s" % (path, e.strerror), "name")
    return True


# ---------------------------------------------------------------------------
# views


def result_addresses(result: Optional[Dict[str, Any]]) -> List[str]:
    if not result:
        return []
    try:
        return [ip.address for ip in parse_result(result).ips]
    except CNIError:
        return []


def attachment_view(entry: CacheEntry) -> Dict[str, Any]:
    """One cached attachment as diff and facts show it."""
    return {
        "network": entry.network_name,
        "container_id": entry.container_id,
        "ifname": entry.ifname,
        "netns": entry.netns,
        "ips": result_addresses(entry.result),
        "cni_args": [[k, v] for k, v in entry.cni_args],
        "capability_args": entry.capability_args,
    }


def state_view(entries: Sequence[CacheEntry], netns: str, owned: bool) -> Dict[str, Any]:
    """The probe's state: {} when there is nothing, so diff reads "added"/"removed"."""
    if not entries and not netns:
        return {}
    return {"netns": netns, "netns_created_by_cni_attach": owned, "attachments": [attachment_view(e) for e in entries]}


def config_view(path: str, net: NetworkConfigList, rule: str) -> Dict[str, Any]:
    return {"file": path, "name": net.name, "cniVersion": net.cni_version, "plugins": net.plugin_types, "rule": rule}


def _same_json(a: bytes, b: bytes) -> bool:
    """Configs compared as data: reformatting a file is not a change."""
    try:
        return json.loads(a) == json.loads(b)
    except (ValueError, UnicodeDecodeError):
        return a == b


# ---------------------------------------------------------------------------


class Attacher:
    """cni_attach's three states over one `Runtime` (plugins exec'd here, on the node)."""

    def __init__(self, req: AttachRequest, check_mode: bool = False, runtime: Optional[Runtime] = None) -> None:
        self.req = req
        self.check_mode = check_mode
        self.runtime = runtime or Runtime(req.bin_dirs)
        self.out = Outcome()

    # -- shared ----------------------------------------------------------------
    def _active(self) -> Tuple[str, NetworkConfigList, str]:
        try:
            active = find_active(self.req.conf_dir, self.req.network)
        except ConfError as e:
            raise AttachError(e.msg, "network" if self.req.network is not None else "conf_dir")
        return active.path, active.conf, active.reason

    def _entries(self, network: Optional[str] = None) -> List[CacheEntry]:
        """Cached attachments of this probe: container ID `name` on `ifname`."""
        try:
            found = list_attachments(self.req.cache_dir, container_id=self.req.name)
        except CacheError as e:
            raise AttachError(e.msg, "cache_dir")
        return [e for e in found if e.ifname == self.req.ifname and (network is None or e.network_name == network)]

    def _owned(self) -> Optional[Dict[str, Any]]:
        return read_marker(self.req.cache_dir, self.req.name)

    def _rt(self, netns: str, entry: Optional[CacheEntry] = None) -> RuntimeConf:
        if entry is not None:  # replay with what ADD got (libcni GetNetworkListCachedConfig)
            return RuntimeConf(entry.container_id, entry.netns, entry.ifname, list(entry.cni_args), dict(entry.capability_args), self.req.cache_dir)
        return RuntimeConf(self.req.name, netns, self.req.ifname, list(self.req.cni_args), dict(self.req.capability_args), self.req.cache_dir)

    def _cached_net(self, entry: CacheEntry, fallback: Optional[NetworkConfigList]) -> NetworkConfigList:
        """The list as it was at ADD (CRI-O replays DEL from the cache); the
        current one when the cache holds none usable."""
        if entry.config:
            try:
                return parse_conf_list(entry.config, entry.path)
            except CNIError as e:
                self.out.notes.append("cached config of %s unusable (%s); using the current config" % (entry.path, e))
        if fallback is None:
            raise AttachError("cache entry %s holds no usable config and no current config names network %r" % (entry.path, entry.network_name), "network")
        return fallback

    def _del(self, net: NetworkConfigList, rt: RuntimeConf, what: str) -> None:
        self.out.actions.append("DEL %s of network %s" % (what, net.name))
        if self.check_mode:
            return
        try:
            done = self.runtime.del_list(net, rt)
        except ChainError as e:
            self.out.trace.extend(e.trace)
            raise AttachError("DEL of %s failed (cache entry and namespace kept, so it can be retried): %s" % (what, e), **self._failure())
        self.out.trace.extend(done.trace)
        self.out.notes.extend(done.notes)

    def _failure(self, **extra: Any) -> Dict[str, Any]:
        out = self.out.as_dict()
        out.pop("changed")
        out.update(extra)
        return out

    def _missing_plugins(self, net: NetworkConfigList) -> None:
        """Refuse before touching anything when a chain plugin is not installed."""
        for i, ptype in enumerate(net.plugin_types):
            try:
                self.runtime.plugin_exec.find(ptype)
            except CNIError as e:
                raise AttachError("plugin %r (plugins[%d] of network %r) is not installed: %s" % (ptype, i, net.name, e.msg), "bin_dir", config=self.out.config)

    # -- present ---------------------------------------------------------------
    def present(self) -> Outcome:
        """Keep a cached attachment that matches; else DEL what is there and ADD."""
        path, net, rule = self._active()
        out = self.out
        out.config = config_view(path, net, rule)
        entries = self._entries()
        marker = self._owned()
        out.before = state_view(entries, marker["netns"] if marker else "", marker is not None)
        self._missing_plugins(net)
        self._refuse_foreign(entries, marker)
        netns_plan = self._plan_netns(marker)

        current = next((e for e in entries if e.network_name == net.name), None)
        if current is not None and len(entries) == 1:
            reasons = self._drift(current, net, self.req.netns_path)
            if not reasons:
                return self._keep(current, marker, net)
            out.notes.append("re-attaching: " + "; ".join(reasons))
        for entry in entries:  # a stale or outdated attachment of this probe goes first
            self._del(
                self._cached_net(entry, net if entry.network_name == net.name else None), self._rt("", entry), "%s %s" % (entry.container_id, entry.ifname)
            )

        out.changed = True
        out.netns = self.req.netns_path
        self._make_netns(netns_plan)
        out.netns_created = not self.req.netns
        out.actions.append("ADD %s to network %s (%s) as %s" % (self.req.name, net.name, path, self.req.ifname))
        if self.check_mode:
            out.after = self._predicted_after(net)
            return out
        return self._add(net)

    def _refuse_foreign(self, entries: Sequence[CacheEntry], marker: Optional[Dict[str, Any]]) -> None:
        """Somebody else's attachment (a runtime's, or one with netns= given) is never DEL'd implicitly."""
        want_netns = self.req.netns_path
        for entry in entries:
            if entry.netns and entry.netns != want_netns and not (marker is not None and marker.get("netns") == entry.netns):
                raise AttachError(
                    "container ID %r is attached on %s to network %r in netns %s, which cni_attach did not make; "
                    "pass netns=%s to manage that attachment, or choose another name"
                    % (entry.container_id, entry.ifname, entry.network_name, entry.netns, entry.netns),
                    "name",
                    config=self.out.config,
                )

    def _keep(self, current: CacheEntry, marker: Optional[Dict[str, Any]], net: NetworkConfigList) -> Outcome:
        """The cached attachment is what is wanted: report it, change nothing."""
        out = self.out
        out.result = current.result
        out.cache_file = current.path
        out.netns = current.netns
        out.netns_created = marker is not None and marker["netns"] == current.netns
        out.after = out.before
        out.actions.append("attachment %s on %s already cached: nothing to do" % (self.req.name, net.name))
        return out

    def _predicted_after(self, net: NetworkConfigList) -> Dict[str, Any]:
        """Check mode's `after`: the attachment as ADD would cache it (no IPs: IPAM did not run)."""
        want_netns = self.req.netns_path
        return {
            "netns": want_netns,
            "netns_created_by_cni_attach": self.out.netns_created,
            "attachments": [
                {
                    "network": net.name,
                    "container_id": self.req.name,
                    "ifname": self.req.ifname,
                    "netns": want_netns,
                    "ips": [],
                    "cni_args": [[k, v] for k, v in self.req.cni_args],
                    "capability_args": self.req.capability_args,
                }
            ],
        }

    def _add(self, net: NetworkConfigList) -> Outcome:
        """ADD the chain; a failed ADD is undone (DEL, cache entry, our namespace) before the error goes up."""
        out = self.out
        rt = self._rt(self.req.netns_path)
        try:
            done = self.runtime.add_list(net, rt)
        except ChainError as e:
            out.trace.extend(e.trace)
            # with no netns= given the namespace is ours (_plan_netns refuses any other)
            cleanup = self._undo_add(net, rt, remove_ns=not self.req.netns)
            raise AttachError(str(e), **self._failure(cleanup=cleanup, code=e.code, plugin_type=e.plugin_type))
        out.trace.extend(done.trace)
        out.notes.extend(done.notes)
        out.result = done.result
        out.cache_file = done.cache_file
        out.after = state_view(self._entries(net.name), self.req.netns_path, out.netns_created)
        return out

    def _drift(self, entry: CacheEntry, net: NetworkConfigList, want_netns: str) -> List[str]:
        reasons = []
        if not _same_json(entry.config, net.bytes):
            reasons.append("the network config changed since ADD")
        if [tuple(p) for p in entry.cni_args] != list(self.req.cni_args):
            reasons.append("cni_args differ from the cached ones")
        if entry.capability_args != self.req.capability_args:
            reasons.append("capability_args differ from the cached ones")
        if entry.netns != want_netns:
            reasons.append("cached netns %s is not %s" % (entry.netns, want_netns))
        elif not netns_alive(entry.netns):
            reasons.append("netns %s is gone (stale attachment)" % entry.netns)
        return reasons

    def _plan_netns(self, marker: Optional[Dict[str, Any]]) -> str:
        """How to get the namespace: "given", "reuse", "create" or "recreate".
        Refusals come here, before anything is DEL'd or made."""
        path = self.req.netns_path
        if self.req.netns:
            if not netns_alive(path):
                raise AttachError("%s is not a network namespace (missing, or a file left where one was)" % path, "netns")
            return "given"
        ours = marker is not None and marker.get("netns") == path
        if netns_alive(path):
            if not ours:
                raise AttachError(
                    "network namespace %s exists and was not made by cni_attach; pass netns=%s to attach to it, or choose another name" % (path, path),
                    "name",
                )
            return "reuse"
        if os.path.lexists(path):
            if not ours:
                raise AttachError("%s exists but is not a network namespace, and cni_attach did not make it" % path, "name")
            return "recreate"  # ours, but only the mount point is left
        return "create"

    def _make_netns(self, plan: str) -> None:
        path = self.req.netns_path
        if plan == "given":
            return
        if plan == "reuse":
            self.out.actions.append("reuse network namespace %s (made by cni_attach)" % path)
            return
        self.out.actions.append("create network namespace %s" % path)
        if self.check_mode:
            return
        if plan == "recreate":
            remove_netns(self.req.name)
        write_marker(self.req.cache_dir, self.req.name, path)
        try:
            create_netns(self.req.name)
        except AttachError:
            delete_marker(self.req.cache_dir, self.req.name)
            raise

    def _undo_add(self, net: NetworkConfigList, rt: RuntimeConf, remove_ns: bool) -> Dict[str, Any]:
        """After a failed ADD: DEL (the spec asks the runtime to), drop the cache
        entry, delete the namespace we made. Returns what happened, for the failure."""
        report: Dict[str, Any] = {"del": "ok", "cache_removed": False, "netns_removed": False}
        try:
            done = self.runtime.del_list(net, rt)
            self.out.trace.extend(done.trace)
        except ChainError as e:
            self.out.trace.extend(e.trace)
            report["del"] = "failed: %s" % e
        try:
            report["cache_removed"] = delete_entry(self.req.cache_dir, net.name, rt.container_id, rt.ifname)
        except CacheError as e:
            report["cache_removed"] = "failed: %s" % e
        if remove_ns:
            try:
                report["netns_removed"] = remove_netns(self.req.name)
            except AttachError as e:
                report["netns_removed"] = "failed: %s" % e
            delete_marker(self.req.cache_dir, self.req.name)
            self.out.netns_created = False
        return report

    # -- checked ---------------------------------------------------------------
    def checked(self) -> Outcome:
        path, net, rule = self._active()
        out = self.out
        out.config = config_view(path, net, rule)
        entry = next(iter(self._entries(net.name)), None)
        if entry is None:
            raise AttachError(
                "no cached attachment of %r on %s to network %r in %s; attach it first (state=present)"
                % (self.req.name, self.req.ifname, net.name, os.path.join(self.req.cache_dir, "results")),
                "name",
                config=out.config,
            )
        marker = self._owned()
        out.before = out.after = state_view([entry], entry.netns, marker is not None)
        out.netns = entry.netns
        out.netns_created = marker is not None and marker.get("netns") == entry.netns
        out.cache_file = entry.path
        out.result = entry.result
        if not _same_json(entry.config, net.bytes):
            out.notes.append("the config changed since ADD; CHECK runs the current one, as libcni's CheckNetworkList does")
        out.actions.append("CHECK %s on network %s" % (self.req.name, net.name))
        if self.check_mode:
            return out
        try:
            done = self.runtime.check_list(net, self._rt("", entry))
        except ChainError as e:
            out.trace.extend(e.trace)
            raise AttachError(str(e), **self._failure(code=e.code, plugin_type=e.plugin_type))
        out.trace.extend(done.trace)
        out.notes.extend(done.notes)
        return out

    # -- absent ----------------------------------------------------------------
    def absent(self) -> Outcome:
        out = self.out
        entries = self._entries(self.req.network)
        marker = self._owned()
        out.before = state_view(entries, marker["netns"] if marker else "", marker is not None)
        current: Optional[NetworkConfigList] = None
        if not entries and marker is None:
            out.actions.append("no attachment and no namespace of %r: nothing to do" % self.req.name)
            return out
        out.changed = True
        try:
            path, current, rule = self._active()
            out.config = config_view(path, current, rule)
        except AttachError as e:
            if not entries:  # a namespace we made, nothing cached, and no config to DEL with
                out.notes.append("no DEL without a cached attachment or a config: %s" % e)
        for entry in entries:
            net = self._cached_net(entry, current if current is not None and current.name == entry.network_name else None)
            if entry.config:
                out.config = config_view(entry.path, net, "the config cached at ADD (libcni cache), as CRI-O replays DEL")
            self._del(net, self._rt("", entry), "%s %s" % (entry.container_id, entry.ifname))
        if not entries and current is not None:
            # we made the namespace but nothing is cached (ADD interrupted):
            # DEL without prevResult releases what the plugins may hold
            self._del(current, self._rt(marker["netns"] if marker else ""), "%s %s (uncached)" % (self.req.name, self.req.ifname))
        if marker is not None:
            out.netns = marker["netns"]
            out.netns_created = True
            out.actions.append("delete network namespace %s" % marker["netns"])
            if not self.check_mode:
                if marker["netns"] == os.path.join(NETNS_DIR, self.req.name):
                    remove_netns(self.req.name)
                delete_marker(self.req.cache_dir, self.req.name)
        return out


# ---------------------------------------------------------------------------
# the command


def run_in_netns(netns_path: str, argv: List[str], timeout: int) -> Dict[str, Any]:
    """Run argv inside the namespace, like `ip netns exec`: the netns is
    entered before the fork, and the child gets its own mount namespace with
    a /sys of the probe's netns (best effort), so `ls /sys/class/net` agrees
    with `ip link`. Never raises for the command's own failure."""
    from ..net import netns as nsutil

    start = time.monotonic()
    out: Dict[str, Any] = {"cmd": list(argv), "rc": None, "stdout": "", "stderr": "", "timed_out": False}
    try:
        with nsutil.entered(netns_path):
            # own process group: a timeout kills what the command started too
            proc = run_group(argv, b"", None, timeout, preexec_fn=_private_sysfs)
        out.update(rc=proc.returncode, stdout=proc.stdout.decode("utf-8", "replace"), stderr=proc.stderr.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired as e:
        out.update(rc=-9, timed_out=True, stdout=(e.stdout or b"").decode("utf-8", "replace"), stderr=(e.stderr or b"").decode("utf-8", "replace"))
    except OSError as e:
        out.update(rc=127, stderr="cannot run %s: %s" % (argv[0], e.strerror))
    except CNIError as e:
        out.update(rc=1, stderr=e.msg)
    out["duration_ms"] = round((time.monotonic() - start) * 1000.0, 3)
    out["stdout_lines"] = out["stdout"].splitlines()
    return out


def _private_sysfs() -> None:
    """In the forked child: own mount namespace, /sys remounted for the current
    netns (iproute2 netns_switch). Failures are ignored: only /sys is affected."""
    import ctypes
    import ctypes.util

    clone_newns, ms_rec, ms_slave, mnt_detach = 0x00020000, 0x4000, 0x80000, 2
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.unshare(clone_newns) != 0:
            return
        if libc.mount(b"", b"/", b"none", ms_slave | ms_rec, None) != 0:
            return
        if libc.umount2(b"/sys", mnt_detach) == 0:
            libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None)
    except Exception:  # noqa: BLE001 - the command still runs with the node's /sys
        return
