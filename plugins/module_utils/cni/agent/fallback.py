# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shim's in-process fallback: run one plugin call here, importing as little as it can.

Used only when no agent answers (agent/shim.py's `run_here`); the agent
itself imports normally. The one thing done here besides `skel.main` is to
make `pyroute2` and `netaddr` lazy packages (and `inspect` a lazy module,
see _LAZY_STDLIB): their `__init__` imports every
part of the library (pyroute2: conntrack, NDB with sqlite, ipset, ethtool,
wireguard, nl80211, ...; netaddr: EUI/OUI databases through
importlib.resources, globs, sets) to re-export its public names, which costs
more than everything a plugin call needs. A lazy package is the same package
(same `__path__`, same submodules, the same classes); its `__init__` just
runs on the first name it does not resolve itself, instead of at import time.
`pyroute2.config` is one too (answering the few names pyroute2's message
modules read at import), and `logging`, `traceback`, `pprint`, `pkgutil`
and `copy` are stand-ins until first used; the methods `dataclass`
generates come precompiled (fast_dataclasses); `main` also turns the
cyclic garbage collector off, the process ending after its one call.
"""

from __future__ import annotations

import sys
import types
from typing import Dict, Optional

from ..lazy import _FAST_NAMES, lazy_package


# Standard-library modules imported at module level by what a plugin call
# imports, but used only on paths it rarely takes: `inspect` (ast, dis,
# tokenize, ...) is imported by `dataclasses` for one call, the docstring of
# a dataclass that has none; `traceback` (linecache, tokenize, textwrap) by
# pyroute2.netlink to log a message it cannot encode or decode; `pprint` by
# netaddr.core for two debugging helpers; `pkgutil` (importlib.util) by
# pyroute2's ifinfmsg to load link-kind plugins from the directories
# `pyroute2.config` names (none); `copy` (and its probe of Jython's
# `org.python.core`, a failed import) by `dataclasses` for asdict/astuple.
_LAZY_STDLIB = ("inspect", "traceback", "pprint", "pkgutil", "copy")


class _LazyModule(types.ModuleType):
    """Stands in for a module until its first attribute is asked for; then the
    real module is imported, replaces this one in sys.modules, and answers
    (this stand-in forwards to it for whoever kept a reference)."""

    def __getattr__(self, name: str) -> object:
        return getattr(self._nodenet_real(), name)

    def _nodenet_real(self) -> types.ModuleType:
        real = self.__dict__.get("_nodenet_module")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            __import__(self.__name__)
            real = self.__dict__["_nodenet_module"] = sys.modules[self.__name__]  # the module itself, also for a dotted name
        return real


def lazy_module(name: str) -> bool:
    """Put a stand-in for the stdlib module `name` in sys.modules; False if it is imported already."""
    if name in sys.modules:
        return False
    sys.modules[name] = _LazyModule(name)
    return True


class _LazyLogger:
    """What the `logging` stand-in's getLogger(name) gives: the real logger on first use."""

    def __init__(self, logging: _LazyLogging, name: str) -> None:
        self._nodenet_logging = logging
        self._nodenet_name = name

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._nodenet_logging.getLogger(self._nodenet_name), attr)


class _LazyLogging(_LazyModule):
    """`logging` (traceback, string, threading's locks, ...) is imported by
    pyroute2's message modules to call getLogger(__name__) at import and log
    on paths a plugin call does not take: their loggers stay stand-ins until
    one of them is used."""

    def getLogger(self, name: Optional[str] = None) -> object:  # noqa: N802 - logging's name
        if name and "_nodenet_module" not in self.__dict__:
            return _LazyLogger(self, name)
        return self._nodenet_real().getLogger(name)


def lazy_logging() -> bool:
    if "logging" in sys.modules:
        return False
    sys.modules["logging"] = _LazyLogging("logging")
    return True


def _pyroute2_config() -> Dict[str, object]:
    """What pyroute2's message modules read from `pyroute2.config` at import,
    as its `__init__` sets it. That `__init__` imports platform and
    multiprocessing (pickle, ...) to fill in names only pyroute2's sockets
    and NDB use; any other name runs it (lazy_package)."""
    import socket

    return {"AF_BRIDGE": getattr(socket, "AF_BRIDGE", 7), "data_plugins_pkgs": [], "data_plugins_path": []}


def lazy_pyroute2() -> bool:
    return lazy_package("pyroute2")


# pyroute2's link-kind plugins (bond, can, vxlan, ...: fifteen modules):
# ifinfmsg imports every one at import to fill its kind -> IFLA_INFO_DATA
# class table, and a call never looks one up: it encodes only bridge, veth
# and bridge-port data (ifinfmsg's own classes) and a link it reads keeps of
# IFLA_LINKINFO only the kind (net/rtnl.py).
_LINK_KINDS = "pyroute2.netlink.rtnl.ifinfmsg.plugins"


class _LazyKindModule(_LazyModule):
    """Stands in for a link-kind plugin module: its class (the attribute named
    like the module, what ifinfmsg reads) is a _LazyKind until used; any other
    attribute imports the real module."""

    def __getattr__(self, name: str) -> object:
        if name == self.__name__.rpartition(".")[2] and "_nodenet_module" not in self.__dict__:
            kind = self.__dict__.get("_nodenet_kind")
            if kind is None:
                kind = self.__dict__["_nodenet_kind"] = _LazyKindMeta(name, (), {"__module__": self.__name__, "_nodenet_plugin": self})
            return kind
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._nodenet_real(), name)


class _LazyKindMeta(type):
    """A link kind's class until used: made (called) it makes the real class's
    instance; any attribute it does not have is the real class's."""

    def _nodenet_real(cls) -> type:
        plugin = cls.__dict__["_nodenet_plugin"]
        return getattr(plugin._nodenet_real(), cls.__name__)

    def __call__(cls, *args: object, **kwargs: object) -> object:
        return cls._nodenet_real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> object:
        return getattr(cls._nodenet_real(), name)


def lazy_link_kinds() -> int:
    """Stand-ins for pyroute2's link-kind plugin modules; how many (0 if ifinfmsg is imported already)."""
    if "pyroute2.netlink.rtnl.ifinfmsg" in sys.modules or "pyroute2" not in sys.modules:
        return 0
    import os

    path = os.path.join(getattr(sys.modules["pyroute2"], "__path__", [""])[0], *_LINK_KINDS.split(".")[1:])
    try:
        names = sorted(n[:-3] for n in os.listdir(path) if n.endswith(".py") and not n.startswith("_"))
    except OSError:
        return 0
    for name in names:
        sys.modules.setdefault(_LINK_KINDS + "." + name, _LazyKindModule(_LINK_KINDS + "." + name))
    return len(names)


def fast_dataclasses() -> bool:
    """Let `dataclasses` take the methods it generates from fallback_dataclasses.py
    (compiled once, into its pyc) instead of compiling each text again: about
    60 `exec`s of generated source, a tenth of a call. A text that module lacks
    (another Python, a dataclass changed since scripts/gen_fallback_dataclasses.py
    ran) is compiled as before; the functions made are the same (same code, and
    the globals and defaults `dataclasses` passes). False if nothing was installed."""
    import dataclasses

    if "exec" in vars(dataclasses):
        return False
    from . import fallback_dataclasses

    if fallback_dataclasses.CACHE_TAG != sys.implementation.cache_tag:
        return False
    codes = fallback_dataclasses.CODE

    def exec_cached(source: object, globals: Optional[Dict[str, object]] = None, locals: Optional[Dict[str, object]] = None) -> None:
        code = codes.get(source) if isinstance(source, str) else None
        if code is None or globals is None or locals is None or "__builtins__" not in globals:
            return exec(source, globals, locals)  # type: ignore[arg-type]
        locals["__create_fn__"] = types.FunctionType(code, globals)  # what exec of the text defines
        return None

    dataclasses.exec = exec_cached  # type: ignore[attr-defined]  # a module global shadows the builtin for dataclasses only
    return True


def lazy_imports() -> None:
    for name in _FAST_NAMES:
        lazy_package(name)
    lazy_package("pyroute2.config", _pyroute2_config())
    lazy_logging()
    for name in _LAZY_STDLIB:
        lazy_module(name)
    lazy_link_kinds()
    fast_dataclasses()


def main(name: str) -> int:
    """One call in this process, which then exits (the shim's exec)."""
    # No cyclic garbage collection: importing runs it about thirty times
    # (every 700 new objects: classes, functions, dicts) for garbage there is
    # none of, and a call makes little; the process ends after one call.
    import gc

    gc.disable()
    lazy_imports()
    from ..skel import main as skel_main

    return skel_main(name)
