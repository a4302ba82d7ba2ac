# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Finding and parsing network configs in a conf dir, the way libcni does.

Matches libcni/conf.go (ConfFiles, NetworkConfFromBytes, NetworkConfFromFile,
LoadNetworkConf, ConfListFromConf) and containerd's "first file wins" rule
(containerd/go-cni opts.go loadFromConfDir). Every error names the file and
the field; `scan` reports the same errors without raising, for cni_facts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ..config.decode import lookup
from ..names import valid_name
from ..spec import CURRENT_VERSION, ERR_DECODE, ERR_INVALID_NETCONF, ERR_IO, CNIError, parse_version

CONF_EXTENSIONS = (".conf", ".conflist", ".json")
LIST_EXTENSION = ".conflist"
SINGLE_EXTENSIONS = (".conf", ".json")


class ConfError(CNIError):
    """A config file could not be used; `path` is the file (or dir) at fault."""

    def __init__(self, code: int, path: str, msg: str, details: str = "") -> None:
        super().__init__(code, "%s: %s" % (path, msg) if path else msg, details)
        self.path = path


class ConfNotFound(ConfError):
    """No config (with the asked name) in the dir: libcni's NotFoundError / NoConfigsFoundError."""


@dataclass
class NetworkConfigList:
    """A parsed network configuration list (libcni NetworkConfigList)."""

    name: str
    cni_version: str
    plugins: List[Dict[str, Any]]
    # What libcni keeps as list.Bytes and caches base64-encoded as "config":
    # the file's bytes for a .conflist, the synthesised list for an up-converted .conf.
    bytes: bytes
    path: str = ""
    cni_versions: List[str] = field(default_factory=list)
    disable_check: bool = False
    disable_gc: bool = False
    load_only_inlined_plugins: bool = False
    # files under <dir>/<name>/ whose plugins were appended (libcni >= 1.3)
    plugin_files: List[str] = field(default_factory=list)
    upconverted: bool = False

    @property
    def plugin_types(self) -> List[str]:
        return [conf_type(p) for p in self.plugins]

    def as_dict(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "cniVersion": self.cni_version,
            "cniVersions": list(self.cni_versions),
            "disableCheck": self.disable_check,
            "disableGC": self.disable_gc,
            "loadOnlyInlinedPlugins": self.load_only_inlined_plugins,
            "plugins": [dict(p) for p in self.plugins],
            "plugin_files": list(self.plugin_files),
            "upconverted": self.upconverted,
        }


@dataclass
class ActiveConfig:
    """The config a runtime would use, and why (for the operator)."""

    path: str
    conf: NetworkConfigList
    reason: str


@dataclass
class ConfFileStatus:
    """One file of the conf dir as cni_facts reports it."""

    path: str
    priority: int
    kind: str  # "conflist" | "conf" | "dir"
    valid: bool
    error: str = ""
    conf: Optional[NetworkConfigList] = None
    # containerd's rule: the first file in sorted order is used, valid or not
    active: bool = False

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "path": self.path,
            "priority": self.priority,
            "kind": self.kind,
            "valid": self.valid,
            "error": self.error,
            "active": self.active,
        }
        if self.conf is not None:
            out.update(
                name=self.conf.name,
                cniVersion=self.conf.cni_version,
                plugins=self.conf.plugin_types,
                plugin_files=list(self.conf.plugin_files),
                disableCheck=self.conf.disable_check,
                disableGC=self.conf.disable_gc,
            )
        return out


# ---------------------------------------------------------------------------
# listing


def _extension(filename: str) -> str:
    # Go's filepath.Ext: from the last dot, so ".conf" itself has extension ".conf".
    dot = filename.rfind(".")
    return filename[dot:] if dot >= 0 else ""


def conf_files(directory: str, extensions: Sequence[str] = CONF_EXTENSIONS) -> List[str]:
    """Config files in `directory`, lexically sorted (libcni ConfFiles + sort.Strings).

    Non-recursive; directories are skipped; a missing directory is not an error.
    """
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ConfError(ERR_IO, directory, "cannot list config dir: %s" % e.strerror)
    files = [
        os.path.join(directory, entry.name)
        for entry in entries
        # like Go's DirEntry.IsDir(): a symlink is not followed here
        if not entry.is_dir(follow_symlinks=False) and _extension(entry.name) in extensions
    ]
    # Go sorts the full paths byte-wise; Python's str order is code-point order,
    # which agrees for UTF-8 names.
    return sorted(files)


# ---------------------------------------------------------------------------
# parsing


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfError(ERR_IO, path, "error reading file: %s" % e.strerror)


def _decode_object(data: bytes, path: str, what: str) -> Dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfError(ERR_DECODE, path, "error parsing %s: %s" % (what, e))
    if not isinstance(obj, dict):
        raise ConfError(ERR_DECODE, path, "error parsing %s: expected a JSON object, got %s" % (what, type(obj).__name__))
    return obj


def _read_bool(raw: Dict[str, Any], key: str, path: str) -> bool:
    # NetworkConfFromBytes readBool: a JSON bool or "true"/"false" in any case.
    value = raw.get(key)
    if key not in raw:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfError(ERR_INVALID_NETCONF, path, "field %r must be true or false (bool or string), got %s" % (key, json.dumps(value)))


def conf_type(plugin: Dict[str, Any]) -> str:
    """A checked plugin object's `type`, read as libcni reads it (types.PluginConf: Go's key rule)."""
    return lookup(plugin, "type")


def conf_capabilities(plugin: Dict[str, Any]) -> Dict[str, bool]:
    """A checked plugin object's `capabilities` (the key folds; the map's keys are exact)."""
    return lookup(plugin, "capabilities") or {}


def _check_plugin(plugin: Any, path: str, where: str) -> Dict[str, Any]:
    """A plugin object: needs a non-empty string `type` (NetworkPluginConfFromBytes)."""
    if not isinstance(plugin, dict):
        raise ConfError(ERR_INVALID_NETCONF, path, "%s must be a JSON object" % where)
    ptype = lookup(plugin, "type")
    if ptype is None or ptype == "":
        raise ConfError(ERR_INVALID_NETCONF, path, "%s: missing 'type'" % where)
    if not isinstance(ptype, str):
        raise ConfError(ERR_INVALID_NETCONF, path, "%s.type must be a string" % where)
    # Go decodes these into typed fields, so a wrong type fails the parse;
    # capabilities must be name -> bool for runtimeConfig injection to mean anything.
    for key in ("name", "cniVersion"):
        if lookup(plugin, key) is not None and not isinstance(lookup(plugin, key), str):
            raise ConfError(ERR_INVALID_NETCONF, path, "%s.%s must be a string" % (where, key))
    caps = lookup(plugin, "capabilities")
    if caps is not None and (not isinstance(caps, dict) or not all(isinstance(v, bool) for v in caps.values())):
        raise ConfError(ERR_INVALID_NETCONF, path, "%s.capabilities must be an object of booleans" % where)
    return plugin


def _newer_than_current(version: str, path: str, where: str) -> bool:
    try:
        return parse_version(version) > parse_version(CURRENT_VERSION)
    except CNIError as e:
        raise ConfError(ERR_DECODE, path, "%s: %s" % (where, e.msg))


def parse_conf_list(data: bytes, path: str = "") -> NetworkConfigList:
    """A .conflist's bytes -> NetworkConfigList (libcni NetworkConfFromBytes).

    May return a list with no plugins when `plugins` is absent: they are then
    expected in <dir>/<name>/ (see load_conf_file).
    """
    raw = _decode_object(data, path, "configuration list")
    if "name" not in raw:
        raise ConfError(ERR_INVALID_NETCONF, path, "missing field 'name'")
    name = raw["name"]
    if not isinstance(name, str):
        raise ConfError(ERR_INVALID_NETCONF, path, "field 'name' must be a string")
    version = raw.get("cniVersion", "")
    if version is None:
        version = ""
    if not isinstance(version, str):
        raise ConfError(ERR_INVALID_NETCONF, path, "field 'cniVersion' must be a string")

    versions: List[str] = []
    if "cniVersions" in raw:
        # spec 1.1.0 / libcni >= 1.2: drop versions newer than we implement, pool
        # them with cniVersion, and the highest one becomes the list version.
        raw_versions = raw["cniVersions"]
        if not isinstance(raw_versions, list):
            raise ConfError(ERR_INVALID_NETCONF, path, "field 'cniVersions' must be a list of strings")
        pool: List[str] = []
        for i, v in enumerate(raw_versions):
            if not isinstance(v, str):
                raise ConfError(ERR_INVALID_NETCONF, path, "cniVersions[%d] must be a string" % i)
            versions.append(v)
            if not _newer_than_current(v, path, "cniVersions[%d]" % i):
                pool.append(v)
        if version and not _newer_than_current(version, path, "cniVersion"):
            pool.append(version)
        if pool:
            version = max(pool, key=parse_version)

    conf = NetworkConfigList(
        name=name,
        cni_version=version,
        plugins=[],
        bytes=data,
        path=path,
        cni_versions=versions,
        disable_check=_read_bool(raw, "disableCheck", path),
        disable_gc=_read_bool(raw, "disableGC", path),
        load_only_inlined_plugins=_read_bool(raw, "loadOnlyInlinedPlugins", path),
    )
    if "plugins" not in raw:
        if conf.load_only_inlined_plugins:
            raise ConfError(ERR_INVALID_NETCONF, path, "'loadOnlyInlinedPlugins' is true, and no 'plugins' key")
        return conf
    plugins = raw["plugins"]
    if not isinstance(plugins, list):
        raise ConfError(ERR_INVALID_NETCONF, path, "field 'plugins' must be a list")
    if not plugins:
        raise ConfError(ERR_INVALID_NETCONF, path, "no plugins in list")
    conf.plugins = [_check_plugin(p, path, "plugins[%d]" % i) for i, p in enumerate(plugins)]
    return conf


def parse_single_conf(data: bytes, path: str = "") -> NetworkConfigList:
    """A .conf/.json (one plugin) up-converted to a one-plugin list (libcni ConfListFromConf).

    A .conf without `type` is rejected: that is how a list saved as .conf is caught.
    """
    raw = _decode_object(data, path, "configuration")
    plugin = _check_plugin(raw, path, "config")
    name = lookup(plugin, "name") or ""  # libcni ConfFromBytes decodes types.PluginConf
    version = lookup(plugin, "cniVersion") or ""
    # libcni re-marshals the list it synthesised; Go sorts map keys, compact separators.
    synthesized = {"cniVersion": version, "name": name, "plugins": [raw]}
    list_bytes = json.dumps(synthesized, sort_keys=True, separators=(",", ":")).encode()
    return NetworkConfigList(name=name, cni_version=version, plugins=[raw], bytes=list_bytes, path=path, upconverted=True)


def _load_plugin_dir(conf_dir: str, network: str) -> List[str]:
    # The network name becomes a path component; a name that could walk out of
    # the conf dir is not a valid network name anyway (ADD would refuse it).
    if not valid_name(network) or network in (".", ".."):
        return []
    return conf_files(os.path.join(conf_dir, network), (".conf",))


def load_conf_file(path: str) -> NetworkConfigList:
    """Parse one config file by its extension.

    .conflist: the list, plus plugins from <dir>/<name>/*.conf (sorted) unless
    loadOnlyInlinedPlugins (libcni >= 1.3 NetworkConfFromFile); zero plugins is
    an error. .conf/.json: one plugin, up-converted.
    """
    data = _read(path)
    if _extension(path) != LIST_EXTENSION:
        return parse_single_conf(data, path)
    conf = parse_conf_list(data, path)
    if not conf.load_only_inlined_plugins:
        for plugin_file in _load_plugin_dir(os.path.dirname(path), conf.name):
            plugin = _check_plugin(_decode_object(_read(plugin_file), plugin_file, "plugin configuration"), plugin_file, "plugin config")
            conf.plugins.append(plugin)
            conf.plugin_files.append(plugin_file)
    if not conf.plugins:
        raise ConfError(ERR_INVALID_NETCONF, path, "no plugin configs found")
    return conf


# ---------------------------------------------------------------------------
# choosing


def find_active(conf_dir: str, name: Optional[str] = None) -> ActiveConfig:
    """The config a runtime would use.

    Without a name: the first file in lexical order, and an invalid first file
    is an error, not skipped (containerd/go-cni, max_conf_num=1).
    With a name: libcni LoadNetworkConf (cnitool) -- .conflist files first,
    then .conf/.json, first match by `name`; any unparsable file met before the
    match aborts the lookup with its error.
    """
    if name is None:
        files = conf_files(conf_dir)
        if not files:
            raise ConfNotFound(ERR_INVALID_NETCONF, "", "no net configurations found in %s" % conf_dir)
        conf = load_conf_file(files[0])
        reason = "first of %d config file(s) in lexical order (containerd's rule: the first file wins)" % len(files)
        return ActiveConfig(path=files[0], conf=conf, reason=reason)

    lists = conf_files(conf_dir, (LIST_EXTENSION,))
    for path in lists:
        conf = load_conf_file(path)
        if conf.name == name:
            return ActiveConfig(path, conf, "first .conflist with name %r in lexical order (libcni LoadNetworkConf)" % name)
    singles = conf_files(conf_dir, SINGLE_EXTENSIONS)
    for path in singles:
        conf = load_conf_file(path)
        if conf.name == name:
            reason = "no .conflist is named %r; first .conf/.json with that name, up-converted to a list (libcni LoadNetworkConf)" % name
            return ActiveConfig(path, conf, reason)
    if not lists and not singles:
        raise ConfNotFound(ERR_INVALID_NETCONF, "", "no net configurations found in %s" % conf_dir)
    raise ConfNotFound(ERR_INVALID_NETCONF, "", 'no net configuration with name "%s" in %s' % (name, conf_dir))


def scan(conf_dir: str) -> List[ConfFileStatus]:
    """Every config file in priority order with its parse status. Never raises."""
    try:
        files = conf_files(conf_dir)
    except CNIError as e:
        return [ConfFileStatus(path=conf_dir, priority=0, kind="dir", valid=False, error=str(e))]
    out: List[ConfFileStatus] = []
    for i, path in enumerate(files):
        kind = "conflist" if _extension(path) == LIST_EXTENSION else "conf"
        status = ConfFileStatus(path=path, priority=i, kind=kind, valid=False, active=(i == 0))
        try:
            status.conf = load_conf_file(path)
            status.valid = True
        except CNIError as e:
            status.error = str(e)
        except Exception as e:  # scan is for diagnosis: report, never raise
            status.error = "%s: unexpected %s: %s" % (path, type(e).__name__, e)
        out.append(status)
    return out
