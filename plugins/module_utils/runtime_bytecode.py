# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules' `cni` package from the installed plugin runtime's byte-code.

A module runs from Ansible's AnsiballZ zip, and zipimport has no byte-code
cache: every module run on a node compiled the `cni` package it imports from
source (about 0.15 CPU s of cni_node_state's 0.5). The plugin runtime that
cni_plugin installed on the node (`<bin_dir>/.nodenet-cni/<digest16>`) holds
the same package as `nodenet_cni`, with the controller's pycs, sealed by the
runtime's MANIFEST (per-file SHA-256).

Importing this module (before the `cni` imports; it has no other effect)
puts a finder first on sys.meta_path for the collection's
`plugins.module_utils.cni` package: each of its modules is still found in
the zip (the payload decides what is imported), and is then executed from
the runtime's pyc of the same file, but only when

- the pyc's header is this interpreter's magic number with a hash-based
  flag, and its source hash (importlib.util.source_hash, what the controller
  wrote) is that of the zip's source byte for byte, and
- the pyc's SHA-256 is the one the runtime's MANIFEST names for it.

Otherwise (no runtime, another Python, another version of the collection, a
damaged runtime, anything unexpected) that module is compiled from the zip,
as without this.

It also stops zipimport compiling each module of the zip twice. Python's
zipimporter (3.8-3.12) finds a module's spec through its get_filename,
which compiles the module's source only to learn which file it came from,
and the import compiles it again; and our finder asks the zip for the spec
of each `cni` module it then runs from a pyc. For the modules imported
after this one, get_filename names the file from the zip's directory
instead, the way the compiling version picks it (a package's
`__init__.py` before a module's `.py`), when the zip holds only sources for
that name, as AnsiballZ's does; anything else asks the original. The module keeps its name, package and __file__ (the zip's);
only its code object comes from the pyc.

The runtime is looked for in the default lib_dir of each `bin_dir` the
module is given (Ansible's own parameter reader, basic._load_params, before
AnsibleModule parses them) and of /opt/cni/bin. Only in a module run that
AnsiballZ started (its parameters are there): an import anywhere else
(ansible-test's import test, a unit test) changes nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import sys
import zipimport

from ansible.module_utils import basic

PACKAGE = __name__.rsplit(".", 1)[0] + ".cni"  # ansible_collections.nodenet.cni.plugins.module_utils.cni
RUNTIME_PACKAGE = "nodenet_cni"
MANIFEST = "MANIFEST.json"
LIB_DIR = ".nodenet-cni"  # installer.default_lib_dir (installer is not imported here: it imports the cni package)
DEFAULT_BIN_DIRS = ("/opt/cni/bin",)
HASH_BASED = (0b01, 0b11)  # pyc flags: hash-based (check_source off / on)


class _Runtime:
    """One installed runtime's directory and MANIFEST hashes."""

    def __init__(self, rdir: str, hashes: dict) -> None:
        self.rdir, self.hashes = rdir, hashes

    def code(self, rel: str, source: bytes):
        """The code object of nodenet_cni/<rel> from its pyc, or None unless it provably is `source`'s."""
        cache_tag = sys.implementation.cache_tag
        if not cache_tag:
            return None
        head, tail = os.path.split(rel)
        pyc_rel = os.path.join(RUNTIME_PACKAGE, head, "__pycache__", "%s.%s.pyc" % (tail[: -len(".py")], cache_tag))
        want = self.hashes.get(pyc_rel)
        if not isinstance(want, str):
            return None
        try:
            fd = os.open(os.path.join(self.rdir, pyc_rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if (
            len(data) < 16
            or data[:4] != importlib.util.MAGIC_NUMBER
            or int.from_bytes(data[4:8], "little") not in HASH_BASED
            or data[8:16] != importlib.util.source_hash(source)
            or hashlib.sha256(data).hexdigest() != want
        ):
            return None
        try:
            return marshal.loads(data[16:])
        except (EOFError, ValueError, TypeError):
            return None


class _Loader:
    """Executes a module from the runtime's pyc when it matches the zip's source, else as the zip's loader would."""

    def __init__(self, inner, runtimes, rel: str) -> None:
        self.inner, self.runtimes, self.rel = inner, runtimes, rel

    def create_module(self, spec):
        return self.inner.create_module(spec) if hasattr(self.inner, "create_module") else None

    def exec_module(self, module) -> None:
        code = None
        try:
            source = self.inner.get_data(module.__spec__.origin)
            for runtime in self.runtimes:
                code = runtime.code(self.rel, source)
                if code is not None:
                    break
        except Exception:  # anything unexpected: the zip's way
            code = None
        if code is None:
            self.inner.exec_module(module)
        else:
            exec(code, module.__dict__)  # pylint: disable=exec-used

    def __getattr__(self, name):  # get_source, get_resource_reader, is_package, ... as the zip's loader
        return getattr(self.inner, name)


class _Finder:
    """First on sys.meta_path, for PACKAGE and its modules only."""

    def __init__(self, runtimes) -> None:
        self.runtimes = runtimes

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PACKAGE and not fullname.startswith(PACKAGE + "."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not spec.origin or not hasattr(spec.loader, "get_data") or not spec.origin.endswith(".py"):
            return spec
        rel = fullname[len(PACKAGE) + 1:].replace(".", "/")
        rel = (rel + "/__init__.py" if rel else "__init__.py") if spec.submodule_search_locations is not None else rel + ".py"
        spec.loader = _Loader(spec.loader, self.runtimes, rel)
        return spec

    def invalidate_caches(self) -> None:
        pass


def _bin_dirs() -> list:
    try:
        params = basic._load_params()  # pylint: disable=protected-access
    except Exception:
        return []
    value = params.get("bin_dir") if isinstance(params, dict) else None
    if isinstance(value, str):
        value = value.split(",")
    return [b for b in value if isinstance(b, str) and os.path.isabs(b)] if isinstance(value, list) else []


def _runtimes(bin_dirs) -> list:
    found = []
    for bin_dir in list(bin_dirs) + [b for b in DEFAULT_BIN_DIRS if b not in bin_dirs]:
        lib_dir = os.path.join(os.path.normpath(bin_dir), LIB_DIR)
        try:
            entries = sorted(os.listdir(lib_dir))
        except OSError:
            continue
        for entry in entries:
            if entry.startswith("."):
                continue
            try:
                fd = os.open(os.path.join(lib_dir, entry, MANIFEST), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as f:
                    manifest = json.loads(f.read())
            except (OSError, ValueError):
                continue
            hashes = manifest.get("sha256") if isinstance(manifest, dict) else None
            if isinstance(hashes, dict):
                found.append(_Runtime(os.path.join(lib_dir, entry), hashes))
    return found


def _zip_filename(original):
    """zipimporter.get_filename without compiling (see the module's docstring)."""

    def get_filename(self, fullname):
        try:
            path = zipimport._get_module_path(self, fullname)  # pylint: disable=protected-access
            files = self._files  # pylint: disable=protected-access
            found = [suffix for suffix, _bytecode, _package in zipimport._zip_searchorder if path + suffix in files]  # pylint: disable=protected-access
        except Exception:
            found = []
        if found and not any(suffix.endswith(".pyc") for suffix in found):
            return self.archive + zipimport.path_sep + path + found[0]
        return original(self, fullname)

    get_filename.nodenet_original = original
    return get_filename


def patch_zipimport() -> bool:
    """Install the non-compiling get_filename (once); False where zipimport is not the one it knows."""
    current = zipimport.zipimporter.get_filename
    if hasattr(current, "nodenet_original"):
        return True
    if not all(hasattr(zipimport, name) for name in ("_get_module_path", "_zip_searchorder", "path_sep", "_get_module_code")):
        return False
    zipimport.zipimporter.get_filename = _zip_filename(current)
    return True


def install() -> bool:
    """Put the finder first on sys.meta_path (once); False when there is no runtime to use."""
    if any(isinstance(f, _Finder) for f in sys.meta_path) or PACKAGE in sys.modules:
        return False
    if getattr(basic, "_ANSIBLE_ARGS", None) is None:
        return False  # not a module run by AnsiballZ (an import test, a unit test, a controller-side import)
    patch_zipimport()
    runtimes = _runtimes(_bin_dirs())
    if not runtimes:
        return False
    sys.meta_path.insert(0, _Finder(runtimes))
    return True


try:
    install()
except Exception:  # never in the way: without it, the zip's source is compiled as always
    pass
