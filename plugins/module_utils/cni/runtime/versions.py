# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Asking a plugin which spec versions it speaks (the VERSION command).

Probe and decoding as libcni does it (pkg/invoke/exec.go GetVersionInfo,
pkg/version/plugin.go PluginDecoder): dummy NETNS/IFNAME/PATH for old skels,
`unknown CNI_COMMAND: VERSION` means a 0.1.0-only plugin, a 0.2.0 reply
without supportedVersions means 0.1.0 and 0.2.0.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..invoke import ExecRecord
from ..spec import CURRENT_VERSION
from .pluginexec import PluginExec

# what libcni sets so that plugins built on pre-0.2 skels do not reject the call
_PROBE_DUMMY = "dummy"


@dataclass
class PluginVersions:
    """A plugin's VERSION answer (or why there is none)."""

    path: str
    supported_versions: List[str] = field(default_factory=list)
    cni_version: str = ""  # the version the reply was labelled with
    error: str = ""  # set when the plugin does not answer usably
    inferred: str = ""  # set when versions were inferred from an old plugin's reply
    record: Optional[ExecRecord] = None

    @property
    def answers(self) -> bool:
        return not self.error

    def supports(self, cni_version: str) -> bool:
        # an empty config version means 0.1.0 (pkg/types/create)
        return (cni_version or "0.1.0") in self.supported_versions

    def as_dict(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "name": os.path.basename(self.path),
            "answers": self.answers,
            "supportedVersions": list(self.supported_versions),
            "cniVersion": self.cni_version,
            "error": self.error,
            "inferred": self.inferred,
        }


def probe_env(plugin_exec: PluginExec) -> Dict[str, str]:
    return plugin_exec.environment("VERSION", netns=_PROBE_DUMMY, ifname=_PROBE_DUMMY, cni_path=_PROBE_DUMMY)


def plugin_versions(path: str, plugin_exec: Optional[PluginExec] = None) -> PluginVersions:
    """Exec `path` with CNI_COMMAND=VERSION and decode the reply. Never raises."""
    plugin_exec = plugin_exec or PluginExec(cni_path=())
    stdin = json.dumps({"cniVersion": CURRENT_VERSION}, separators=(",", ":")).encode()
    rec = plugin_exec.run(path, probe_env(plugin_exec), stdin)
    out = PluginVersions(path=path, record=rec)
    if rec.cni_error is not None:
        if rec.cni_error.msg == "unknown CNI_COMMAND: VERSION":
            out.supported_versions = ["0.1.0"]
            out.inferred = "plugin predates the VERSION command (unknown CNI_COMMAND: VERSION): 0.1.0 only"
        else:
            out.error = "does not answer VERSION: %s" % rec.error
        return out
    return _decode(out, rec.stdout)


def _decode(out: PluginVersions, stdout: str) -> PluginVersions:
    try:
        info = json.loads(stdout)
    except ValueError as e:
        out.error = "does not answer VERSION: decoding version info: %s" % e
        return out
    if not isinstance(info, dict):
        out.error = "does not answer VERSION: decoding version info: expected a JSON object"
        return out
    version = info.get("cniVersion")
    if not isinstance(version, str) or not version:
        out.error = "does not answer VERSION: decoding version info: missing field cniVersion"
        return out
    out.cni_version = version
    supported = info.get("supportedVersions")
    if not supported:
        if version == "0.2.0":
            out.supported_versions = ["0.1.0", "0.2.0"]
            out.inferred = "0.2.0 reply without supportedVersions: 0.1.0 and 0.2.0"
        else:
            out.error = "does not answer VERSION: decoding version info: missing field supportedVersions"
        return out
    if not isinstance(supported, list) or not all(isinstance(v, str) for v in supported):
        out.error = "does not answer VERSION: decoding version info: supportedVersions must be a list of strings"
        return out
    out.supported_versions = list(supported)
    return out


def probe_dir(bin_dir: str, plugin_exec: Optional[PluginExec] = None) -> List[PluginVersions]:
    """VERSION of every executable regular file in a CNI bin dir, sorted by name."""
    try:
        names = sorted(os.listdir(bin_dir))
    except OSError:
        return []
    out: List[PluginVersions] = []
    for name in names:
        path = os.path.join(bin_dir, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            out.append(plugin_versions(path, plugin_exec))
    return out
