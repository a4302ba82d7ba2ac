# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The part of a plugin's stdin every plugin shares (SPEC.md section 3).

Plugin-specific sections (bridge options, host-local ipam) are parsed in
their own modules of this package from the raw dict kept in NetConf.raw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..spec import (
    DNS,
    ERR_DECODE,
    ERR_INVALID_ENV,
    ERR_INVALID_NETCONF,
    CNIError,
    Result,
)

# Same rule the Go library applies to container IDs and network names
# (pkg/utils/utils.go); the network name becomes a directory under dataDir,
# so this is also what keeps "../x" out of it.
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


@dataclass
class NetConf:
    cni_version: str
    name: str
    type: str
    raw: Dict[str, Any]
    capabilities: Dict[str, bool] = field(default_factory=dict)
    ipam: Dict[str, Any] = field(default_factory=dict)
    dns: DNS = field(default_factory=DNS)
    runtime_config: Dict[str, Any] = field(default_factory=dict)
    args: Dict[str, Any] = field(default_factory=dict)
    prev_result: Optional[Result] = None

    @property
    def ipam_type(self) -> str:
        return self.ipam.get("type", "") if self.ipam else ""

    def cni_args(self, key: str) -> Any:
        """args.cni.<key> (CONVENTIONS.md 'args in network config')."""
        cni = self.args.get("cni") if isinstance(self.args, dict) else None
        return cni.get(key) if isinstance(cni, dict) else None


def decode_json(data: bytes, what: str = "network config") -> Dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CNIError(ERR_DECODE, "error unmarshalling %s: %s" % (what, e))
    except RecursionError:  # found by the fuzz suite: a spec error, not a traceback
        raise CNIError(ERR_DECODE, "error unmarshalling %s: nested too deeply" % what)
    if not isinstance(obj, dict):
        raise CNIError(ERR_DECODE, "error unmarshalling %s: expected a JSON object" % what)
    return obj


def validate_name(name: Any) -> str:
    if name is None or name == "":
        raise CNIError(ERR_INVALID_NETCONF, "missing network name")
    if not isinstance(name, str):
        raise CNIError(ERR_INVALID_NETCONF, "network config field 'name' must be a string")
    if not NAME_RE.match(name):
        raise CNIError(ERR_INVALID_NETCONF, "invalid characters found in network name", name)
    return name


def parse_netconf(raw: Dict[str, Any]) -> NetConf:
    """Validate the common keys of a plugin's stdin. Every error names the field."""
    name = validate_name(raw.get("name"))
    version = raw.get("cniVersion", "")
    if not isinstance(version, str):
        raise CNIError(ERR_DECODE, "network config field 'cniVersion' must be a string")
    ptype = raw.get("type", "")
    if not isinstance(ptype, str):
        raise CNIError(ERR_INVALID_NETCONF, "network config field 'type' must be a string")
    conf = NetConf(cni_version=version, name=name, type=ptype, raw=raw)
    conf.capabilities = _typed(raw, "capabilities", dict, {})
    conf.ipam = _typed(raw, "ipam", dict, {})
    if "type" in conf.ipam and not isinstance(conf.ipam["type"], str):
        raise CNIError(ERR_INVALID_NETCONF, "network config field 'ipam.type' must be a string")
    conf.dns = DNS.from_dict(raw.get("dns"))
    conf.runtime_config = _typed(raw, "runtimeConfig", dict, {})
    conf.args = _typed(raw, "args", dict, {})
    prev = raw.get("prevResult")
    if prev:
        conf.prev_result = Result.from_dict(prev, "prevResult")
    return conf


def _typed(raw: Dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise CNIError(ERR_INVALID_NETCONF, "network config field %r must be a JSON %s" % (key, "object" if kind is dict else kind.__name__))
    return value


# ---------------------------------------------------------------------------
# CNI_ARGS: "K=V;K2=V2" (pkg/types/args.go LoadArgs)


def parse_cni_args(value: str) -> List[Tuple[str, str]]:
    pairs: List[Tuple[str, str]] = []
    if not value:
        return pairs
    for item in value.split(";"):
        kv = item.split("=")
        if len(kv) != 2:
            raise CNIError(ERR_INVALID_ENV, "CNI_ARGS: invalid pair %r" % item)
        pairs.append((kv[0], kv[1]))
    return pairs


def load_cni_args(value: str, known: Iterable[str]) -> Dict[str, str]:
    """Keys the plugin understands, matched case-sensitively like Go's field names.

    Unknown keys are an error unless IgnoreUnknown=1|true is present, as in Go.
    """
    known = set(known)
    pairs = parse_cni_args(value)
    out: Dict[str, str] = {}
    unknown: List[str] = []
    ignore_unknown = False
    for key, val in pairs:
        if key == "IgnoreUnknown":
            ignore_unknown = val.lower() in ("1", "true")
            continue
        if key in known:
            out[key] = val
        else:
            unknown.append("%s=%s" % (key, val))
    if unknown and not ignore_unknown:
        raise CNIError(ERR_INVALID_ENV, "CNI_ARGS: unknown args %s" % json.dumps(unknown))
    return out
