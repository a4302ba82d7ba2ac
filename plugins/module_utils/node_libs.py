# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pyroute2 and netaddr for the modules, on a stock node.

A stock node's python3 has neither. The modules that need them use the
node's own copies when it has them (python3-pyroute2, python3-netaddr, or
anything else on the interpreter's path), and otherwise the copies inside
the plugin runtime that nodenet.cni.cni_plugin unpacked on the node
(`<bin_dir>/.nodenet-cni/<digest>`, named by each launcher): the same files
the installed CNI plugins import on every exec. Without either, the module
fails with Ansible's missing_required_lib message plus what to do.

The check is eager (at module start), because the `cni` package imports
these libraries lazily inside the functions that use them: a module would
otherwise fail half-way with a bare ImportError. It only looks (the import
system's PathFinder, as `import` would search sys.path), and then puts each
library in sys.modules as a lazy package (cni/lazy.py, as the plugins'
in-process fallback does): `from pyroute2 import IPRoute` imports pyroute2.iproute,
not the whole library that pyroute2's `__init__` re-exports (NDB with
sqlite, conntrack, ipset, ethtool, ...); netaddr likewise.

Standard library only at import time: `missing_message` imports Ansible
when it is called, so tests can load this file on a stock python3.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Sequence, Tuple

from .cni.node import installer
from .cni.lazy import lazy_package

LIBRARIES: Tuple[str, ...] = ("pyroute2", "netaddr")
# Debian/Ubuntu (and Fedora) package names of the same libraries
DISTRIBUTION_PACKAGES = {"pyroute2": "python3-pyroute2", "netaddr": "python3-netaddr"}
DEFAULT_BIN_DIRS: Tuple[str, ...] = ("/opt/cni/bin",)
# conf_dir and cache_dir as libcni has them (documented once: doc fragment nodenet.cni.node.cni_dirs)
CNI_DIR_OPTIONS = dict(
    conf_dir=dict(type="path", default="/etc/cni/net.d"),
    cache_dir=dict(type="path", default="/var/lib/cni"),
)


@dataclass
class Libraries:
    """Where the requested libraries come from: "" when the interpreter's own
    path has them, else the plugin runtime directory; `missing` when neither."""

    runtime_dir: str = ""
    missing: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict:
        return {"source": self.runtime_dir or ("" if self.missing else "python3"), "missing": list(self.missing)}


def runtime_dirs(bin_dirs: Iterable[str]) -> List[str]:
    """Plugin runtimes on this node: the ones the launchers in `bin_dirs`
    name first (the installed, current one), then any other unpacked under
    each bin dir's default lib dir. Only complete runtimes (with a manifest)."""
    found: List[str] = []

    def add(rdir: str) -> None:
        if rdir not in found and os.path.isfile(os.path.join(rdir, installer.MANIFEST)):
            found.append(rdir)

    for bin_dir in bin_dirs:
        try:
            names = sorted(os.listdir(bin_dir))
        except OSError:
            continue
        for name in names:
            rdir = installer.launcher_runtime_dir(os.path.join(bin_dir, name))
            if rdir:
                add(rdir)
        lib_dir = installer.default_lib_dir(bin_dir)
        try:
            entries = sorted(os.listdir(lib_dir))
        except OSError:
            continue
        for entry in entries:
            add(os.path.join(lib_dir, entry))
    return found


def _importable(name: str) -> bool:
    """`import name` would find it (a top-level package: looked up, not imported)."""
    return name in sys.modules or PathFinder.find_spec(name, sys.path) is not None


def load(bin_dirs: Sequence[str] = DEFAULT_BIN_DIRS, names: Sequence[str] = LIBRARIES) -> Libraries:
    """Make `names` importable: from the interpreter's path, else from a plugin runtime."""
    missing = [n for n in names if not _importable(n)]
    libs = Libraries(missing=missing)
    for rdir in runtime_dirs(bin_dirs) if missing else []:
        if not all(os.path.isfile(os.path.join(rdir, n, "__init__.py")) for n in missing):
            continue
        # appended: the node's own packages keep precedence for everything else
        if rdir not in sys.path:
            sys.path.append(rdir)
        # a fresh finder for the new entry; not importlib.invalidate_caches(), which makes each of the
        # AnsiballZ zip's importers (one per package, 25 in cni_node_state) re-read the zip's directory
        sys.path_importer_cache.pop(rdir, None)
        if all(_importable(n) for n in missing):
            libs = Libraries(runtime_dir=rdir)
            break
    if not libs.missing:
        for name in names:
            lazy_package(name)  # (False, and nothing done, when it is imported already)
    return libs


def remedy(missing: Sequence[str], bin_dirs: Sequence[str]) -> str:
    """What to do, in one sentence."""
    where = " or ".join(installer.default_lib_dir(d) for d in bin_dirs) or "<bin_dir>/.nodenet-cni"
    packages = " and ".join(DISTRIBUTION_PACKAGES.get(n, n) for n in missing)
    return (
        "Run nodenet.cni.cni_plugin on this node first: the plugin runtime it installs under %s carries pyroute2 and netaddr "
        "for the node's python3, and this module uses it (bin_dir names where to look). "
        "Or install %s from the distribution." % (where, packages)
    )


def missing_message(missing: Sequence[str], bin_dirs: Sequence[str]) -> str:
    """Ansible's standard missing-library text, then the remedy."""
    from ansible.module_utils.basic import missing_required_lib

    return "%s. %s" % (missing_required_lib(" and ".join(missing)).rstrip("."), remedy(missing, bin_dirs))


def require(module: Any, bin_dirs: Sequence[str], names: Sequence[str] = LIBRARIES) -> Libraries:
    """load(), or fail the module naming what to install."""
    libs = load(bin_dirs, names)
    if libs.missing:
        module.fail_json(msg=missing_message(libs.missing, bin_dirs), missing_libraries=libs.missing)
    return libs


def node_module(argument_spec: dict, libraries: Sequence[str] = LIBRARIES, **kwargs: Any) -> Any:
    """The AnsibleModule of a module that runs on a CNI node.

    Adds `bin_dir` (documented once, in the nodenet.cni.node doc fragment)
    and, unless `libraries` is empty, require()s them at once. A module
    whose own option checks must come first passes libraries=() and calls
    require() itself.
    """
    from ansible.module_utils.basic import AnsibleModule

    spec = dict(argument_spec)
    spec["bin_dir"] = dict(type="list", elements="path", default=list(DEFAULT_BIN_DIRS))
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if libraries:
        require(module, module.params["bin_dir"], libraries)
    return module
