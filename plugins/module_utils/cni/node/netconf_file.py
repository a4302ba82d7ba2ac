# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A network config file in the conf dir, as declared state.

Rendering is deterministic and `changed` compares parsed JSON, so a file
that differs only in formatting is left alone. Writes are atomic (temp
file + rename in the same directory), so a runtime reading the conf dir
during a change sees the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..fileio import atomic_write, open_dir_nofollow
from ..spec import ERR_INVALID_NETCONF, CNIError
from ..runtime.confdir import CONF_EXTENSIONS, NetworkConfigList, conf_files, parse_conf_list, parse_single_conf

DISABLED_SUFFIX = ".nodenet-disabled"  # not a config extension: libcni skips it
DEFAULT_DATA_DIR = "/var/lib/cni/networks"


@dataclass
class NetconfSpec:
    name: str
    cni_version: str
    plugins: List[Dict[str, Any]]
    conf_dir: str = "/etc/cni/net.d"
    priority: str = "10"
    fmt: str = "conflist"  # "conflist" | "conf"
    disable_check: bool = False
    disable_gc: bool = False

    @property
    def filename(self) -> str:
        return "%s-%s.%s" % (self.priority, self.name, self.fmt) if self.priority else "%s.%s" % (self.name, self.fmt)

    @property
    def path(self) -> str:
        return os.path.join(self.conf_dir, self.filename)


def render(spec: NetconfSpec) -> Dict[str, Any]:
    """The file's JSON object."""
    if spec.fmt == "conf":
        if len(spec.plugins) != 1:
            raise CNIError(ERR_INVALID_NETCONF, "format conf holds exactly one plugin; plugins has %d (use format conflist)" % len(spec.plugins))
        out = {"cniVersion": spec.cni_version, "name": spec.name}
        out.update({k: v for k, v in spec.plugins[0].items() if k not in ("cniVersion", "name")})
        return out
    out = {"cniVersion": spec.cni_version, "name": spec.name}
    if spec.disable_check:
        out["disableCheck"] = True
    if spec.disable_gc:
        out["disableGC"] = True
    out["plugins"] = [dict(p) for p in spec.plugins]
    return out


def dump(obj: Dict[str, Any]) -> str:
    return json.dumps(obj, indent=2) + "\n"


def parse_rendered(spec: NetconfSpec, obj: Dict[str, Any]) -> NetworkConfigList:
    """Parse what we would write with the runtime's own parser (errors name the option)."""
    for i, plugin in enumerate(spec.plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin.get("type"):
            raise CNIError(ERR_INVALID_NETCONF, "plugins[%d] needs a non-empty string 'type'" % i)
    data = dump(obj).encode()
    parse = parse_single_conf if spec.fmt == "conf" else parse_conf_list
    return parse(data, spec.path)


def read_current(path: str) -> Optional[Any]:
    """The file's JSON, the raw text if it does not parse, or None if absent."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def competitors(spec: NetconfSpec) -> List[str]:
    """Config files that a runtime would pick before ours (first file in sorted order wins)."""
    return [p for p in conf_files(spec.conf_dir, CONF_EXTENSIONS) if p < spec.path]


def data_dirs(net: NetworkConfigList) -> List[str]:
    """host-local dataDirs the list uses (default when unset)."""
    out = []
    for plugin in net.plugins:
        ipam = plugin.get("ipam")
        if isinstance(ipam, dict) and str(ipam.get("type", "")).endswith("host-local"):
            d = ipam.get("dataDir") or DEFAULT_DATA_DIR
            if d not in out:
                out.append(d)
    return out


def write_file(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    atomic_write(path, text.encode(), mode)


def disable(path: str, remove: bool) -> str:
    """Take a competing config out of the runtime's view; returns where it went."""
    if remove:
        os.unlink(path)
        return ""
    target = path + DISABLED_SUFFIX
    os.rename(path, target)
    return target


def ensure_data_dir(path: str) -> bool:
    """host-local's dataDir, private to root (0700). True if created or fixed.

    A symlink in its place is refused (OSError), never followed: its target
    is not ours to chmod. The mode is set through the directory's own fd.
    """
    created = False
    if not os.path.lexists(path):
        os.makedirs(path, mode=0o700)
        created = True
    fd = open_dir_nofollow(path)
    try:
        if created or os.fstat(fd).st_mode & 0o777 != 0o700:
            os.fchmod(fd, 0o700)
            return True
    finally:
        os.close(fd)
    return False


def data_dir_ok(path: str) -> bool:
    """A real directory (not a symlink to one) of mode 0700."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_mode & 0o777 == 0o700


@dataclass
class Plan:
    write: bool = False
    disable: List[str] = field(default_factory=list)
    data_dirs: List[str] = field(default_factory=list)
    remove: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.write or self.disable or self.data_dirs or self.remove)
