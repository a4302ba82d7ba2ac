# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The part of a plugin's stdin every plugin shares (SPEC.md section 3).

Plugin-specific sections (bridge options, host-local ipam) are parsed in
their own modules of this package through NetConf.fields, with the same
Go key rules (config.decode).
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from ..names import valid_name
from ..spec import (
    DNS,
    ERR_INVALID_ENV,
    ERR_INVALID_NETCONF,
    CNIError,
    Result,
)
from .decode import Fields
from .result import parse_dns, parse_result


@dataclass
class NetConf:
    """types.NetConf, read with Go's key rules. `fields` reads plugin-specific keys."""

    cni_version: str
    name: str
    type: str
    raw: Dict[str, Any]
    capabilities: Dict[str, bool] = field(default_factory=dict)
    ipam: Fields = field(default_factory=lambda: Fields({}, "ipam"))
    dns: DNS = field(default_factory=DNS)
    runtime_config: Fields = field(default_factory=lambda: Fields({}, "runtimeConfig"))
    args: Fields = field(default_factory=lambda: Fields({}, "args"))
    prev_result: Optional[Result] = None
    # Set instead of raising when parsed for DEL (`lenient`): what did not parse.
    problems: List[CNIError] = field(default_factory=list)
    _fields: Optional[Fields] = field(default=None, repr=False, compare=False)

    @property
    def fields(self) -> Fields:
        """The top-level object's readers (made once: its key index is built on the first read)."""
        if self._fields is None or self._fields.raw is not self.raw:
            self._fields = Fields(self.raw)
        return self._fields

    @property
    def ipam_type(self) -> str:
        return self.ipam.str("type")

    def cni_args(self) -> Fields:
        """args.cni (CONVENTIONS.md 'args in network config')."""
        return self.args.obj("cni")


def validate_name(name: Any) -> str:
    """The network name, Go's skel rules and messages (pkg/utils ValidateNetworkName)."""
    if name is None or name == "":
        raise CNIError(ERR_INVALID_NETCONF, "missing network name")
    if not isinstance(name, str):
        raise CNIError(ERR_INVALID_NETCONF, "network config field 'name' must be a string")
    if not valid_name(name):
        raise CNIError(ERR_INVALID_NETCONF, "invalid characters found in network name", name)
    return name


# One CNI call (skel.run, with the delegates it runs in-process on the same
# thread) parses its stdin once: a delegate gets the identical bytes, and so
# the dict and the NetConf its caller made (neither is changed after parsing).
# `memo` is set by skel.run (call_scope) for the duration of a top-level call.
_CALL = threading.local()


def call_memo() -> Optional[Dict[Any, Any]]:
    """The current call's memo, or None outside skel.run."""
    return getattr(_CALL, "memo", None)


@contextlib.contextmanager
def call_scope() -> Iterator[None]:
    """One top-level call's memo on this thread; inside a call (an in-process
    delegate) the caller's stays."""
    if call_memo() is not None:
        yield
        return
    _CALL.memo = {}
    try:
        yield
    finally:
        _CALL.memo = None


def parse_netconf(raw: Dict[str, Any], lenient: bool = False) -> NetConf:
    """The keys every plugin shares (types.NetConf). Every error names the field.

    `lenient` (DEL): what only the runtime supplies - prevResult,
    runtimeConfig, args - may fail to parse; it is recorded in `problems`
    and read as unset, so a DEL can still remove what it finds (a failing
    DEL strands the rest of libcni's chain).

    Within one call the same dict is parsed once (`call_memo`); a parse
    that fails raises every time.
    """
    memo = call_memo()
    if memo is None:
        return _parse_netconf(raw, lenient)
    key = ("netconf", id(raw), lenient)
    kept = memo.get(key)
    if kept is not None and kept[0] is raw:
        return kept[1]
    conf = _parse_netconf(raw, lenient)
    memo[key] = (raw, conf)
    return conf


def _parse_netconf(raw: Dict[str, Any], lenient: bool) -> NetConf:
    f = Fields(raw)
    conf = NetConf(cni_version=f.str("cniVersion"), name=validate_name(f.get("name")), type=f.str("type"), raw=raw, _fields=f)
    conf.capabilities = f.bool_map("capabilities")
    conf.ipam = f.obj("ipam")
    conf.ipam.str("type")  # a non-string type is a config error on every verb
    conf.dns = parse_dns(f.obj("dns"))
    for attr, key in (("runtime_config", "runtimeConfig"), ("args", "args")):
        try:
            setattr(conf, attr, f.obj(key))
        except CNIError as e:
            if not lenient:
                raise
            conf.problems.append(e)
    prev = f.get("prevResult")  # a struct field holding a map: the key folds, its contents are read as a result
    if prev is not None:
        try:
            conf.prev_result = parse_result(prev, "prevResult")
        except CNIError as e:
            if not lenient:
                raise
            conf.problems.append(e)
    return conf


# ---------------------------------------------------------------------------
# GC: the attachments still in use (spec 1.1.0; libcni GCNetworkList)

VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


def valid_attachments(raw: Dict[str, Any]) -> Optional[Set[Tuple[str, str]]]:
    """The (containerID, ifname) pairs a GC must keep, or None when the key is absent.

    libcni sends `cni.dev/valid-attachments` and, for cni#1101, the same list
    as `cni.dev/attachments`; both are read. null or [] means "nothing is
    valid". Absent (cnitool gc, or a runtime that passes no valid set) means
    "not told": a GC then frees nothing, because guessing would free live
    attachments.
    """
    f = Fields(raw)
    if not any(f.present(key) for key in VALID_ATTACHMENTS_KEYS):
        return None
    valid: Set[Tuple[str, str]] = set()
    for key in VALID_ATTACHMENTS_KEYS:
        for item in f.objects(key):  # GCAttachment: Go's key rule applies
            valid.add((item.str("containerID"), item.str("ifname")))
    return valid


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
