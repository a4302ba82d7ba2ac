# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libcni's result cache, byte-compatible so Go runtimes and we share it.

`<cache_dir>/results/<network>-<containerID>-<ifname>` (dir 0700, file 0600)
holding the "cniCacheV1" JSON of libcni/api.go (cacheAdd, getCachedResult,
getCachedConfig, GetCachedAttachments). Files written before libcni v0.8
hold the bare result JSON; they are still read for DEL/CHECK.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..config.decode import lookup
from ..config.result import parse_result
from ..fileio import atomic_write, is_temp_name
from ..spec import ERR_DECODE, ERR_INTERNAL, ERR_IO, CNIError

DEFAULT_CACHE_DIR = "/var/lib/cni"
CACHE_KIND = "cniCacheV1"
RESULTS_DIR = "results"


class CacheError(CNIError):
    """A cache file exists but cannot be used (corrupt, wrong kind, unconvertible)."""


@dataclass
class CacheEntry:
    """One cached attachment (libcni cachedInfo / NetworkAttachment)."""

    container_id: str
    network_name: str
    ifname: str
    config: bytes = b""  # the network list's bytes at ADD time
    netns: str = ""
    cni_args: List[Tuple[str, str]] = field(default_factory=list)
    capability_args: Dict[str, Any] = field(default_factory=dict)
    result: Optional[Dict[str, Any]] = None
    # where it was read from, and "cniCacheV1" or "legacy" (bare result)
    path: str = ""
    kind: str = CACHE_KIND

    def to_json(self) -> bytes:
        """The file content, keys in the order and with the omissions of Go's encoder."""
        out: Dict[str, Any] = {
            "kind": CACHE_KIND,
            "containerId": self.container_id,
            # a Go []byte marshals as standard base64
            "config": base64.b64encode(self.config).decode("ascii"),
            "ifName": self.ifname,
            "networkName": self.network_name,
        }
        if self.netns:
            out["netns"] = self.netns
        if self.cni_args:
            out["cniArgs"] = [[k, v] for k, v in self.cni_args]
        if self.capability_args:
            out["capabilityArgs"] = self.capability_args
        if self.result:
            out["result"] = self.result
        return json.dumps(out, separators=(",", ":")).encode()

    def as_dict(self) -> Dict[str, Any]:
        """For module output: the config decoded when it is JSON."""
        try:
            config: Any = json.loads(self.config) if self.config else None
        except ValueError:
            config = self.config.decode("utf-8", "replace")
        return {
            "path": self.path,
            "kind": self.kind,
            "containerId": self.container_id,
            "networkName": self.network_name,
            "ifName": self.ifname,
            "netns": self.netns,
            "cniArgs": [[k, v] for k, v in self.cni_args],
            "capabilityArgs": self.capability_args,
            "config": config,
            "result": self.result,
        }


def cache_file_path(cache_dir: str, network: str, container_id: str, ifname: str) -> str:
    """libcni getCacheFilePath: all three parts are required."""
    if not network or not container_id or not ifname:
        raise CacheError(
            ERR_INTERNAL,
            "cache file path requires network name (%r), container ID (%r), and interface name (%r)" % (network, container_id, ifname),
        )
    return os.path.join(cache_dir or DEFAULT_CACHE_DIR, RESULTS_DIR, "%s-%s-%s" % (network, container_id, ifname))


def _makedirs_private(path: str) -> None:
    # Go's MkdirAll(dir, 0700) gives every directory it creates 0700;
    # os.makedirs(mode=) would only apply it to the leaf.
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        _makedirs_private(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass


def write_entry(cache_dir: str, entry: CacheEntry) -> str:
    """Store an attachment atomically (temp file + rename, mode 0600); returns the path.

    libcni writes in place; we rename so a concurrent reader (another runtime's
    DEL) never sees half a file.
    """
    path = cache_file_path(cache_dir, entry.network_name, entry.container_id, entry.ifname)
    directory = os.path.dirname(path)
    try:
        _makedirs_private(directory)
        atomic_write(path, entry.to_json(), 0o600)
    except OSError as e:
        raise CacheError(ERR_IO, "failed to write cache file %s: %s" % (path, e.strerror or e))
    return path


def parse_entry(data: bytes, path: str = "") -> CacheEntry:
    """A cache file's content -> CacheEntry. A non-cniCacheV1 file is taken as a
    legacy bare result (kind="legacy", only `result` set)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CacheError(ERR_DECODE, "cache file %s is not JSON: %s" % (path, e))
    if not isinstance(obj, dict):
        raise CacheError(ERR_DECODE, "cache file %s is not a JSON object" % path)
    if lookup(obj, "kind") != CACHE_KIND:  # libcni reads a cachedInfo struct: Go's key rule
        return CacheEntry(container_id="", network_name="", ifname="", result=obj, path=path, kind="legacy")
    try:
        config = base64.b64decode(lookup(obj, "config") or "", validate=True)
    except (binascii.Error, TypeError, ValueError) as e:
        raise CacheError(ERR_DECODE, "cache file %s: field 'config' is not base64: %s" % (path, e))
    args = lookup(obj, "cniArgs") or []
    if not isinstance(args, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in args):
        raise CacheError(ERR_DECODE, "cache file %s: field 'cniArgs' must be a list of [key, value] string pairs" % path)
    caps = lookup(obj, "capabilityArgs") or {}
    result = lookup(obj, "result")
    if not isinstance(caps, dict) or (result is not None and not isinstance(result, dict)):
        raise CacheError(ERR_DECODE, "cache file %s: 'capabilityArgs' and 'result' must be objects" % path)
    for key in ("containerId", "ifName", "networkName", "netns"):
        if not isinstance(lookup(obj, key) or "", str):
            raise CacheError(ERR_DECODE, "cache file %s: field %r must be a string" % (path, key))
    return CacheEntry(
        container_id=lookup(obj, "containerId") or "",
        network_name=lookup(obj, "networkName") or "",
        ifname=lookup(obj, "ifName") or "",
        config=config,
        netns=lookup(obj, "netns") or "",
        cni_args=[(pair[0], pair[1]) for pair in args],  # JSON's [key, value] lists as tuples
        capability_args=caps,
        result=result,
        path=path,
    )


def read_entry(cache_dir: str, network: str, container_id: str, ifname: str) -> Optional[CacheEntry]:
    """The cached attachment, or None when there is no file (libcni ignores read errors)."""
    path = cache_file_path(cache_dir, network, container_id, ifname)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return parse_entry(data, path)


def cached_result(cache_dir: str, network: str, container_id: str, ifname: str, cni_version: str) -> Optional[Dict[str, Any]]:
    """The cached ADD result as the list's version wants it (libcni getCachedResult).

    None when nothing is cached. Raises CacheError for a corrupt file or a result
    that cannot be converted (DEL then drops the file; CHECK fails).
    """
    entry = read_entry(cache_dir, network, container_id, ifname)
    if entry is None or not entry.result:
        if entry is not None and entry.kind == "legacy":
            raise CacheError(ERR_DECODE, "cache file %s holds an empty result" % entry.path)
        return None
    return convert_result(entry.result, cni_version, entry.path)


def convert_result(result: Dict[str, Any], cni_version: str, where: str = "cached result") -> Dict[str, Any]:
    """Convert a result to `cni_version`; the same version is passed through untouched."""
    if lookup(result, "cniVersion") == cni_version:
        return result
    try:
        return parse_result(result, where).to_dict(cni_version or "0.1.0")
    except CNIError as e:
        raise CacheError(e.code, 'failed to convert cached result to config version "%s": %s' % (cni_version, e))


def delete_entry(cache_dir: str, network: str, container_id: str, ifname: str) -> bool:
    """Remove the cache file; False when there was none (libcni cacheDel ignores that)."""
    try:
        path = cache_file_path(cache_dir, network, container_id, ifname)
    except CacheError:
        return False
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CacheError(ERR_IO, "failed to remove cache file %s: %s" % (path, e.strerror))


def list_attachments(cache_dir: str, container_id: str = "", network: str = "") -> List[CacheEntry]:
    """Every cniCacheV1 attachment, file names sorted (libcni GetCachedAttachments).

    Identity comes from the JSON, never from the file name: names may contain
    '-', so "<net>-<id>-<ifname>" cannot be split back. Unreadable, legacy and
    incomplete entries are skipped, as libcni does.
    """
    directory = os.path.join(cache_dir or DEFAULT_CACHE_DIR, RESULTS_DIR)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise CacheError(ERR_IO, "cannot list cache dir %s: %s" % (directory, e.strerror))
    out: List[CacheEntry] = []
    for name in names:
        if is_temp_name(name):
            continue  # our own in-flight (or crashed) writes: fileio's naming rule
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                entry = parse_entry(f.read(), path)
        except (OSError, CacheError):
            continue
        if entry.kind != CACHE_KIND or not entry.ifname or not entry.network_name:
            continue
        if container_id and entry.container_id != container_id:
            continue
        if network and entry.network_name != network:
            continue
        out.append(entry)
    return out
