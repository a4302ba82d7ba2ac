# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lazy packages: a library in sys.modules whose `__init__` has not run yet.

pyroute2's and netaddr's `__init__` import every part of the library to
re-export its public names (pyroute2: conntrack, NDB with sqlite, ipset,
ethtool, wireguard, nl80211, ...; netaddr: EUI/OUI databases through
importlib.resources, globs, sets), which costs more than a plugin call or a
module needs. A lazy package is the same package (same `__path__`, same
submodules, the same classes); its `__init__` just runs on the first name it
does not resolve itself, instead of at import time. The modules' node_libs
uses it, and so do agent/fallback.py (the shim's in-process fallback) and
the agent (agent/server.py), whose worker threads may be first to ask a
package for a name: its `__init__` then runs once, in one thread, while the
others wait for it. Standard library only.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from typing import Dict, Optional

# per package: public names of its __init__ -> the submodule that defines
# them (the __init__ re-exports them from there); the names our code imports
_FAST_NAMES = {
    "pyroute2": {
        "IPRoute": "pyroute2.iproute",
        "NetNS": "pyroute2.iproute",
        "NetlinkError": "pyroute2.netlink.exceptions",
    },
    "netaddr": {
        "IPAddress": "netaddr.ip",
        "IPNetwork": "netaddr.ip",
        "IPRange": "netaddr.ip",
        "AddrFormatError": "netaddr.core",
        "AddrConversionError": "netaddr.core",
    },
}


# held while a lazy package runs its real `__init__` (reentrant: names that
# `__init__` asks its own package for while it runs are not there yet)
_FULL_INIT = threading.RLock()


class _LazyPackage(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        module = _FAST_NAMES.get(self.__name__, {}).get(name)
        if module is not None:
            value = getattr(__import__(module, fromlist=[name]), name)
            setattr(self, name, value)
            return value
        path = getattr(self, "__path__", [""])[0]
        if os.path.exists(os.path.join(path, name + ".py")) or os.path.isdir(os.path.join(path, name)):
            raise AttributeError(name)  # a submodule: the import system loads it (`from pyroute2 import netns`)
        # anything else: the real __init__, once, into this very module
        spec = self.__spec__
        if spec is None or spec.loader is None:
            raise AttributeError(name)
        with _FULL_INIT:
            if not self.__dict__.get("_nodenet_full"):
                self.__dict__["_nodenet_full"] = True
                spec.loader.exec_module(self)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError("module %r has no attribute %r" % (self.__name__, name)) from None


def lazy_package(name: str, preset: Optional[Dict[str, object]] = None) -> bool:
    """Put the lazy package `name` in sys.modules; False if it is already imported or absent.

    `preset`: names the lazy package answers itself, with the very values its
    `__init__` gives them (tests/unit/test_fallback_imports.py compares).
    """
    if name in sys.modules:
        return False
    from importlib.machinery import PathFinder  # importlib.util costs more than it gives here

    parent_name, _dot, child = name.rpartition(".")
    parent = sys.modules.get(parent_name) if parent_name else None
    if parent_name and parent is None:
        return False
    spec = PathFinder.find_spec(name, parent.__path__ if parent is not None else sys.path)
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return False
    # what importlib.util.module_from_spec sets on a package
    module = _LazyPackage(name)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__package__ = name
    module.__path__ = list(spec.submodule_search_locations)
    module.__file__ = spec.origin
    if spec.has_location:
        module.__cached__ = spec.cached
    if preset:
        module.__dict__.update(preset)
    sys.modules[name] = module
    if parent is not None:
        setattr(parent, child, module)  # as the import system binds a submodule
    return True
