# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running a network configuration list: ADD, DEL, CHECK, GC, STATUS.

The semantics are libcni's (libcni/api.go AddNetworkList, DelNetworkList,
CheckNetworkList, GCNetworkList, GetStatusNetworkList, ValidateNetworkList,
buildOneConfig/injectRuntimeConfig). What we add: every exec is recorded,
and the records come back with the result or inside the error, so an
operator sees exactly what each plugin got and said.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ..config.result import parse_result
from .. import names
from ..invoke import ExecRecord, go_error_text
from ..spec import (
    ERR_DECODE,
    ERR_INCOMPATIBLE_VERSION,
    ERR_INVALID_ENV,
    ERR_INVALID_NETCONF,
    ERR_UNKNOWN_CONTAINER,
    CNIError,
    version_ge,
)
from .cache import DEFAULT_CACHE_DIR, CacheEntry, CacheError, cached_result, delete_entry, list_attachments, write_entry
from .confdir import NetworkConfigList, conf_capabilities, conf_type
from .pluginexec import PluginExec
from .versions import PluginVersions, plugin_versions

# libcni's verbs in its error messages: "failed (add)", "failed (delete)"
VERB_OF = {"ADD": "add", "DEL": "delete", "CHECK": "check", "GC": "gc", "STATUS": "status"}
# the key libcni injects for GC, and the legacy name of spec-v1.1.0's text (cni#1101)
VALID_ATTACHMENTS_KEY = "cni.dev/valid-attachments"
LEGACY_ATTACHMENTS_KEY = "cni.dev/attachments"


@dataclass
class RuntimeConf:
    """One attachment's runtime arguments (libcni RuntimeConf)."""

    container_id: str
    netns: str = ""
    ifname: str = "eth0"
    args: List[Tuple[str, str]] = field(default_factory=list)  # CNI_ARGS pairs, in order
    capability_args: Dict[str, Any] = field(default_factory=dict)  # e.g. portMappings, ips, mac
    cache_dir: str = DEFAULT_CACHE_DIR

    @property
    def cni_args(self) -> str:
        # pkg/invoke/args.go stringify: k=v joined by ';', nothing escaped
        return ";".join("%s=%s" % (k, v) for k, v in self.args)


@dataclass
class ChainResult:
    """What a list operation did: the final result (ADD), every exec, and notes
    on decisions that ran no plugin (version gating, cache handling)."""

    verb: str
    network: str
    result: Optional[Dict[str, Any]] = None
    trace: List[ExecRecord] = field(default_factory=list)
    cache_file: str = ""
    notes: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "verb": self.verb,
            "network": self.network,
            "result": self.result,
            "trace": [r.as_dict() for r in self.trace],
            "cache_file": self.cache_file,
            "notes": list(self.notes),
        }


class ChainError(Exception):
    """A list operation failed. The message is libcni's:
    `plugin type="bridge" name="mynet" failed (add): <plugin's error>`.

    plugin_type is "" when no single plugin is at fault (version gating, cache,
    or GC's collected errors, which are in `errors`).
    """

    def __init__(
        self,
        plugin_type: str,
        network: str,
        verb: str,
        cni_error: CNIError,
        trace: Sequence[ExecRecord] = (),
        errors: Sequence["ChainError"] = (),
        notes: Sequence[str] = (),
    ) -> None:
        self.plugin_type = plugin_type
        self.network = network
        self.verb = verb
        self.cni_error = cni_error
        self.trace = list(trace)
        self.errors = list(errors)
        self.notes = list(notes)
        self.cause: Optional[ChainError] = None
        super().__init__(self._message())

    def _message(self) -> str:
        text = go_error_text(self.cni_error)
        if not self.plugin_type:
            return text
        # libcni names only the plugin conf's own "name" (often absent in a
        # list); we always name the network, which is what an operator needs.
        return 'plugin type="%s" name="%s" failed (%s): %s' % (self.plugin_type, self.network, VERB_OF.get(self.verb, self.verb.lower()), text)

    @property
    def code(self) -> int:
        return self.cni_error.code

    def as_dict(self) -> Dict[str, Any]:
        return {
            "msg": str(self),
            "code": self.code,
            "plugin_type": self.plugin_type,
            "network": self.network,
            "verb": self.verb,
            "errors": [str(e) for e in self.errors],
            "trace": [r.as_dict() for r in self.trace],
            "notes": list(self.notes),
        }


@dataclass
class PluginValidation:
    """ValidateNetworkList for one plugin of the list."""

    type: str
    path: str = ""
    versions: Optional[PluginVersions] = None
    supported: bool = False
    error: str = ""

    def as_dict(self) -> Dict[str, Any]:
        return {
            "type": self.type,
            "path": self.path,
            "supportedVersions": list(self.versions.supported_versions) if self.versions else [],
            "supported": self.supported,
            "error": self.error,
        }


@dataclass
class ValidationReport:
    network: str
    cni_version: str
    plugins: List[PluginValidation] = field(default_factory=list)
    capabilities: List[str] = field(default_factory=list)
    trace: List[ExecRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.supported for p in self.plugins)

    @property
    def errors(self) -> List[str]:
        return [p.error for p in self.plugins if p.error]

    def as_dict(self) -> Dict[str, Any]:
        return {
            "network": self.network,
            "cniVersion": self.cni_version,
            "ok": self.ok,
            "errors": self.errors,
            "capabilities": list(self.capabilities),
            "plugins": [p.as_dict() for p in self.plugins],
        }


# ---------------------------------------------------------------------------
# what each plugin receives on stdin


def plugin_stdin(
    net: NetworkConfigList,
    plugin: Dict[str, Any],
    prev_result: Optional[Dict[str, Any]] = None,
    rt: Optional[RuntimeConf] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> bytes:
    """The plugin's config with the list's name and version, prevResult and
    runtimeConfig injected (libcni buildOneConfig + injectRuntimeConfig).

    Keys are only added or replaced, never removed (so plugins also see their
    `capabilities`). Serialised compact with sorted keys, as Go marshals a map.
    """
    conf = dict(plugin)
    conf["name"] = net.name
    conf["cniVersion"] = net.cni_version
    if prev_result is not None:
        conf["prevResult"] = prev_result
    if rt is not None:
        caps = conf_capabilities(plugin)
        # only capabilities the plugin enables AND the runtime supplied
        runtime_config = {k: v for k, v in rt.capability_args.items() if caps.get(k) is True}
        if runtime_config:
            conf["runtimeConfig"] = runtime_config
    if extra:
        conf.update(extra)
    return json.dumps(conf, sort_keys=True, separators=(",", ":")).encode()


# The one interface-name rule (names.py) in Go's words (ValidateInterfaceName).
_GO_BAD_CHARACTER = ("interface name contains / or : or whitespace characters", "")
_GO_IFNAME_ERRORS = {
    names.EMPTY: ("interface name is empty", ""),
    names.TOO_LONG: ("interface name is too long", "interface name should be less than %d characters" % (names.IFNAMSIZ + 1)),
    names.DOTS: ("interface name is . or ..", ""),
    names.BAD_CHARACTER: _GO_BAD_CHARACTER,
    names.NOT_UTF8: _GO_BAD_CHARACTER,
}


def validate_attachment(rt: RuntimeConf, network: str) -> None:
    """What libcni checks before an ADD (pkg/utils ValidateContainerID,
    ValidateNetworkName, ValidateInterfaceName), with Go's codes and texts."""
    if not rt.container_id:
        raise CNIError(ERR_UNKNOWN_CONTAINER, "missing containerID")
    if not names.valid_name(rt.container_id):
        raise CNIError(ERR_INVALID_ENV, "invalid characters in containerID", rt.container_id)
    if not network:
        raise CNIError(ERR_INVALID_NETCONF, "missing network name:")
    if not names.valid_name(network):
        raise CNIError(ERR_INVALID_NETCONF, "invalid characters found in network name", network)
    fault = names.ifname_fault(rt.ifname)
    if fault is not None:
        raise CNIError(ERR_INVALID_ENV, *_GO_IFNAME_ERRORS[fault])


def _at_least(net: NetworkConfigList, version: str, verb: str) -> bool:
    try:
        return version_ge(net.cni_version, version)
    except CNIError as e:
        raise ChainError("", net.name, verb, CNIError(ERR_DECODE, "network %r: %s" % (net.name, e.msg)))


# ---------------------------------------------------------------------------


class Runtime:
    """libcni's CNIConfig: run network lists against the plugins in cni_path.

    `exec_options` are PluginExec's: `env`, the base environment of every
    exec (default: ours, like libcni); `exec_prefix`, an argv each plugin runs
    under, e.g. ["ip", "netns", "exec", "node1"] -- a node runs its plugins
    without one; `timeout` per exec.
    """

    def __init__(self, cni_path: Sequence[str], **exec_options: Any) -> None:
        self.plugin_exec = PluginExec(cni_path, **exec_options)

    # -- one exec ------------------------------------------------------------
    def _exec(
        self,
        command: str,
        net: NetworkConfigList,
        plugin: Dict[str, Any],
        stdin: bytes,
        rt: Optional[RuntimeConf],
        trace: List[ExecRecord],
        notes: List[str],
    ) -> ExecRecord:
        """Find and run one plugin; a failure raises ChainError carrying the trace."""
        ptype = conf_type(plugin)
        try:
            path = self.plugin_exec.find(ptype)
        except CNIError as e:
            raise ChainError(ptype, net.name, command, e, trace, notes=notes)
        if rt is None:  # GC and STATUS: container-specific vars present but empty
            env = self.plugin_exec.environment(command)
        else:
            env = self.plugin_exec.environment(command, rt.container_id, rt.netns, rt.ifname, rt.cni_args)
        rec = self.plugin_exec.run(path, env, stdin)
        trace.append(rec)
        if rec.cni_error is not None:
            raise ChainError(ptype, net.name, command, rec.cni_error, trace, notes=notes)
        return rec

    # -- ADD -------------------------------------------------------------------
    def add_list(self, net: NetworkConfigList, rt: RuntimeConf) -> ChainResult:
        """Plugins in order, each given the previous one's result; the final
        result is cached (libcni AddNetworkList). First failure aborts; nothing
        is undone here -- the caller runs DEL, as the spec asks of a runtime."""
        out = ChainResult("ADD", net.name)
        if net.plugins:
            try:
                validate_attachment(rt, net.name)
            except CNIError as e:
                raise ChainError(conf_type(net.plugins[0]), net.name, "ADD", e, out.trace)
        result: Optional[Dict[str, Any]] = None
        for plugin in net.plugins:
            stdin = plugin_stdin(net, plugin, result, rt)
            rec = self._exec("ADD", net, plugin, stdin, rt, out.trace, out.notes)
            try:
                result = _parse_add_result(rec.stdout, net.cni_version)
            except CNIError as e:
                raise ChainError(conf_type(plugin), net.name, "ADD", e, out.trace)
        out.result = result
        entry = CacheEntry(
            container_id=rt.container_id,
            network_name=net.name,
            ifname=rt.ifname,
            config=net.bytes,
            netns=rt.netns,
            cni_args=list(rt.args),
            capability_args=dict(rt.capability_args),
            result=result,
        )
        try:
            out.cache_file = write_entry(rt.cache_dir, entry)
        except CNIError as e:
            raise ChainError("", net.name, "ADD", CNIError(e.code, 'failed to set network "%s" cached result: %s' % (net.name, e)), out.trace)
        return out

    # -- DEL -------------------------------------------------------------------
    def del_list(self, net: NetworkConfigList, rt: RuntimeConf) -> ChainResult:
        """Plugins in reverse order with the cached result as prevResult (list
        version >= 0.4.0). A failure keeps the cache entry, so DEL can be
        retried with the same prevResult; success removes it (libcni DelNetworkList)."""
        out = ChainResult("DEL", net.name)
        prev: Optional[Dict[str, Any]] = None
        if _at_least(net, "0.4.0", "DEL"):
            try:
                prev = cached_result(rt.cache_dir, net.name, rt.container_id, rt.ifname, net.cni_version)
                out.notes.append("prevResult: the cached ADD result" if prev is not None else "no cached result: DEL without prevResult")
            except CacheError as e:
                # libcni: an unusable cache must not block DEL; drop it and go on
                delete_entry(rt.cache_dir, net.name, rt.container_id, rt.ifname)
                out.notes.append("unusable cache entry removed, DEL without prevResult: %s" % e)
        else:
            out.notes.append("cniVersion %s < 0.4.0: DEL gets no prevResult" % (net.cni_version or "0.1.0"))
        for plugin in reversed(net.plugins):
            self._exec("DEL", net, plugin, plugin_stdin(net, plugin, prev, rt), rt, out.trace, out.notes)
        try:
            if delete_entry(rt.cache_dir, net.name, rt.container_id, rt.ifname):
                out.notes.append("cache entry removed")
        except CacheError as e:
            out.notes.append(str(e))  # libcni ignores cacheDel errors
        return out

    # -- CHECK -----------------------------------------------------------------
    def check_list(self, net: NetworkConfigList, rt: RuntimeConf) -> ChainResult:
        """Plugins in order with the cached result (libcni CheckNetworkList):
        < 0.4.0 is an error, disableCheck runs nothing, no cache -> no prevResult."""
        out = ChainResult("CHECK", net.name)
        if not _at_least(net, "0.4.0", "CHECK"):
            raise ChainError(
                "", net.name, "CHECK", CNIError(ERR_INCOMPATIBLE_VERSION, 'configuration version "%s" does not support the CHECK command' % net.cni_version)
            )
        if net.disable_check:
            out.notes.append("disableCheck is set: no plugin was run")
            return out
        try:
            prev = cached_result(rt.cache_dir, net.name, rt.container_id, rt.ifname, net.cni_version)
        except CacheError as e:
            raise ChainError("", net.name, "CHECK", CNIError(e.code, 'failed to get network "%s" cached result: %s' % (net.name, e)))
        # libcni runs CHECK even without a cache entry; plugins then complain
        # about the missing prevResult, which is the useful message.
        out.notes.append("prevResult: the cached ADD result" if prev is not None else "no cached result: CHECK without prevResult")
        for plugin in net.plugins:
            self._exec("CHECK", net, plugin, plugin_stdin(net, plugin, prev, rt), rt, out.trace, out.notes)
        return out

    # -- GC --------------------------------------------------------------------
    def gc_list(
        self,
        net: NetworkConfigList,
        valid_attachments: Optional[Sequence[Tuple[str, str]]] = None,
        cache_dir: str = DEFAULT_CACHE_DIR,
    ) -> ChainResult:
        """libcni GCNetworkList.

        1. DEL (full list, cached netns/args/capability args) every cached
           attachment of this network whose (containerID, ifname) is not valid;
           None means no attachment is valid, like cnitool's `gc`.
        2. list version >= 1.1.0: GC to every plugin, with the valid set under
           both the spec's key and the legacy one when the caller gave a set.
        Errors of both phases are collected; the rest still runs.
        """
        out = ChainResult("GC", net.name)
        if net.disable_gc:
            out.notes.append("disableGC is set: nothing done")
            return out
        errors: List[ChainError] = []
        valid: Set[Tuple[str, str]] = set(valid_attachments or ())
        try:
            cached = list_attachments(cache_dir, network=net.name)
        except CacheError as e:
            # libcni gives up silently here; we say so and still send GC
            cached = []
            out.notes.append("cached attachments not readable: %s" % e)
        for entry in cached:
            if (entry.container_id, entry.ifname) in valid:
                continue
            rt = RuntimeConf(entry.container_id, entry.netns, entry.ifname, list(entry.cni_args), dict(entry.capability_args), cache_dir)
            try:
                done = self.del_list(net, rt)
                out.trace.extend(done.trace)
                out.notes.append("stale attachment %s %s deleted" % (entry.container_id, entry.ifname))
            except ChainError as e:
                out.trace.extend(e.trace)
                errors.append(_wrap(e, "failed to delete stale attachment %s %s: %s" % (entry.container_id, entry.ifname, e)))

        if _at_least(net, "1.1.0", "GC"):
            extra: Dict[str, Any] = {}
            if valid_attachments is not None:
                items = [{"containerID": cid, "ifname": ifname} for cid, ifname in valid_attachments]
                extra = {VALID_ATTACHMENTS_KEY: items, LEGACY_ATTACHMENTS_KEY: items}
            for plugin in net.plugins:
                try:
                    self._exec("GC", net, plugin, plugin_stdin(net, plugin, extra=extra), None, out.trace, out.notes)
                except ChainError as e:
                    errors.append(_wrap(e, "failed to GC plugin %s: %s" % (conf_type(plugin), go_error_text(e.cni_error))))
        else:
            out.notes.append("cniVersion %s < 1.1.0: no GC sent to plugins" % (net.cni_version or "0.1.0"))
        if errors:
            # errors.Join: one per line
            joined = CNIError(errors[0].code, "\n".join(str(e) for e in errors))
            raise ChainError("", net.name, "GC", joined, out.trace, errors=errors, notes=out.notes)
        return out

    # -- STATUS ----------------------------------------------------------------
    def status_list(self, net: NetworkConfigList) -> ChainResult:
        """libcni GetStatusNetworkList: < 1.1.0 is success without exec; else
        every plugin in order, stopping at the first error (50/51 = not ready)."""
        out = ChainResult("STATUS", net.name)
        if not _at_least(net, "1.1.0", "STATUS"):
            out.notes.append("cniVersion %s < 1.1.0: STATUS not supported, reported as ready" % (net.cni_version or "0.1.0"))
            return out
        for plugin in net.plugins:
            self._exec("STATUS", net, plugin, plugin_stdin(net, plugin), None, out.trace, out.notes)
        return out

    # -- VERSION -----------------------------------------------------------------
    def plugin_versions(self, plugin_type: str) -> PluginVersions:
        """VERSION of the plugin `plugin_type` found in cni_path (libcni GetVersionInfo)."""
        try:
            path = self.plugin_exec.find(plugin_type)
        except CNIError as e:
            return PluginVersions(path="", error=str(e))
        return plugin_versions(path, self.plugin_exec)

    def validate_list(self, net: NetworkConfigList) -> ValidationReport:
        """Every plugin exists and supports the list version (libcni
        ValidateNetworkList); also the union of enabled capabilities. Never raises."""
        expected = net.cni_version or "0.1.0"
        report = ValidationReport(net.name, net.cni_version)
        caps: List[str] = []
        for plugin in net.plugins:
            ptype = conf_type(plugin)
            check = PluginValidation(type=ptype)
            try:
                check.path = self.plugin_exec.find(ptype)
            except CNIError as e:
                check.error = str(e)
            if check.path:
                check.versions = plugin_versions(check.path, self.plugin_exec)
                if check.versions.record is not None:
                    report.trace.append(check.versions.record)
                if not check.versions.answers:
                    check.error = "plugin %s %s" % (ptype, check.versions.error)
                elif check.versions.supports(expected):
                    check.supported = True
                else:
                    check.error = 'plugin %s does not support config version "%s"' % (ptype, expected)
            report.plugins.append(check)
            for cap, enabled in conf_capabilities(plugin).items():
                if enabled is True and cap not in caps:
                    caps.append(cap)
        report.capabilities = caps
        return report


def _wrap(err: ChainError, message: str) -> ChainError:
    """Same failure, GC's wording around it (fmt.Errorf("...: %w")); `cause` keeps the original."""
    wrapped = ChainError("", err.network, err.verb, CNIError(err.code, message), err.trace, notes=err.notes)
    wrapped.cause = err
    return wrapped


def _parse_add_result(stdout: str, list_version: str) -> Dict[str, Any]:
    """An ADD's stdout -> result dict, kept as the plugin printed it.

    A result without cniVersion is taken to be in the config's version
    (pkg/invoke/exec.go fixupResultVersion, cni#895); it must then parse as
    a result of that version, like libcni's create.Create.
    """
    try:
        obj = json.loads(stdout)
    except ValueError as e:  # also an empty stdout, as in Go
        raise CNIError(ERR_DECODE, "failed to unmarshal raw result: %s" % e)
    if obj is None:  # "null" decodes, and libcni turns it into an empty map
        obj = {}
    if not isinstance(obj, dict):
        raise CNIError(ERR_DECODE, "failed to unmarshal raw result: expected a JSON object")
    version = obj.get("cniVersion")
    if not isinstance(version, str) or not version:
        obj["cniVersion"] = list_version or "0.1.0"
    parse_result(obj, "plugin result")
    return obj
