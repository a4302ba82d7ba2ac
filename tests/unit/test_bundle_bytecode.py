# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plugin bundle carries pycs the controller compiled once; a node whose
plugin interpreter has the same cache tag and magic number uses them instead
of running compileall, any other node compiles as before.

What must hold either way: the bundle digest (and so the runtime directory's
name) is a function of the sources alone; the runtime is sealed (every file,
pycs included, in its MANIFEST, runtime_problems() finds nothing); importing
from it on the node's python3 writes nothing into it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

NODE_PYTHON = "/usr/bin/python3"
NAMES = installer.plugin_names(list(installer.PLUGINS), installer.DEFAULT_PREFIX, False, True)
IMPORTS = "import nodenet_cni.skel, nodenet_cni.net.rtnl, nodenet_cni.ipam.allocator, netaddr, pyroute2"
needs_node_python = pytest.mark.skipif(not os.path.exists(NODE_PYTHON), reason="no node python3")


@pytest.fixture(scope="module")
def files():
    return installer.collect_sources()


@pytest.fixture(scope="module")
def pycs(files):
    return installer.compile_sources(files)


def listing(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, n), root) for n in dirnames + filenames]
    return sorted(out)


def pyc_flags(path):
    with open(path, "rb") as f:
        return int.from_bytes(f.read(8)[4:8], "little")


def install(tmp_path, bundle, interpreter):
    """What the cni_plugin module does with a transferred bundle; (runtime dir, how it was compiled, sources)."""
    digest, sources, bundled = installer.read_bundle(str(bundle))
    usable = installer.usable_pycs(bundled, installer.interpreter_info(interpreter))
    bin_dir = str(tmp_path / "bin")
    how = installer.apply_state(bin_dir, installer.default_lib_dir(bin_dir), NAMES, digest, sources, interpreter, pycs=usable)
    return installer.runtime_dir_for(installer.default_lib_dir(bin_dir), digest), how, sources


def test_the_digest_is_the_sources_with_or_without_pycs(tmp_path, files, pycs):
    plain, compiled = tmp_path / "plain.tar.gz", tmp_path / "compiled.tar.gz"
    assert installer.write_bundle(files, str(plain)) == installer.write_bundle(files, str(compiled), pycs=pycs)
    digest, sources, bundled = installer.read_bundle(str(compiled))
    assert digest == installer.bundle_digest(files) and sources == files
    assert bundled["cache_tag"] == sys.implementation.cache_tag
    expected = {installer.pyc_path(rel, sys.implementation.cache_tag) for rel in files if rel.endswith(".py")}
    assert set(bundled["files"]) == expected and len(expected) > 100
    assert installer.read_bundle(str(plain))[2] == {}


def test_pyc_paths_are_where_the_import_system_looks(files):
    import importlib.util

    for rel in list(files)[:20]:
        if rel.endswith(".py"):
            assert installer.pyc_path(rel, sys.implementation.cache_tag) == importlib.util.cache_from_source(rel, optimization="")


@needs_node_python
def test_a_node_with_the_same_cache_tag_uses_the_bundled_pycs_and_never_compiles(tmp_path, files, pycs):
    bundle = tmp_path / "bundle.tar.gz"
    installer.write_bundle(files, str(bundle), pycs=pycs)
    if installer.interpreter_info(NODE_PYTHON)["cache_tag"] != sys.implementation.cache_tag:
        pytest.skip("the node python3 is not this interpreter's version")
    rdir, how, sources = install(tmp_path, bundle, NODE_PYTHON)
    assert how == "bundled"
    assert installer.runtime_problems(rdir, sources) == []
    manifest = json.load(open(os.path.join(rdir, installer.MANIFEST)))
    assert manifest["pyc_tag"] == sys.implementation.cache_tag
    for rel, data in pycs["files"].items():
        assert open(os.path.join(rdir, rel), "rb").read() == data
        assert manifest["sha256"][rel]
    assert pyc_flags(os.path.join(rdir, next(iter(pycs["files"])))) == installer.PYC_UNCHECKED_HASH
    # they load as they are: importing writes nothing, the runtime stays sealed
    before = listing(rdir)
    done = subprocess.run([NODE_PYTHON, "-I", "-S", "-c", "import sys; sys.path.insert(0, %r); %s" % (rdir, IMPORTS)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert listing(rdir) == before and installer.runtime_problems(rdir, sources) == []
    # unpacking changed every mtime; still nothing is recompiled (-X importtime would show a compile as a slow import,
    # a rewritten pyc would show here): the pycs are hash-based
    assert all(pyc_flags(os.path.join(rdir, rel)) == installer.PYC_UNCHECKED_HASH for rel in pycs["files"])


def test_bundled_pycs_skip_compileall(tmp_path, files, pycs):
    """The interpreter is not even run to compile: one that cannot compile anything still installs."""
    digest = installer.bundle_digest(files)
    bin_dir = str(tmp_path / "bin")
    how = installer.apply_state(bin_dir, installer.default_lib_dir(bin_dir), NAMES, digest, files, "/bin/false", pycs=pycs["files"])
    assert how == "bundled"
    assert installer.runtime_problems(installer.runtime_dir_for(installer.default_lib_dir(bin_dir), digest), files) == []
    with pytest.raises(RuntimeError, match="byte-compiling"):
        installer.apply_state(str(tmp_path / "bin2"), str(tmp_path / "bin2/.nodenet-cni"), NAMES, digest, files, "/bin/false")


@needs_node_python
def test_a_node_with_another_cache_tag_compiles_itself(tmp_path, files, pycs):
    """A controller on another Python: its pycs are not for the node's interpreter, which compiles as before."""
    ours = pycs["cache_tag"]
    foreign = {"cache_tag": "cpython-399", "magic": "00000d0a",
               "files": {installer.pyc_path(rel, "cpython-399"): b"\x00\x00\r\n" + pycs["files"][installer.pyc_path(rel, ours)][4:]
                         for rel in files if rel.endswith(".py")}}
    bundle = tmp_path / "bundle.tar.gz"
    installer.write_bundle(files, str(bundle), pycs=foreign)
    assert installer.usable_pycs(installer.read_bundle(str(bundle))[2], installer.interpreter_info(NODE_PYTHON)) is None
    rdir, how, sources = install(tmp_path, bundle, NODE_PYTHON)
    assert how == "compiled on the node"
    assert installer.runtime_problems(rdir, sources) == []
    node_tag = installer.interpreter_info(NODE_PYTHON)["cache_tag"]
    runtime = listing(rdir)
    assert not [p for p in runtime if "cpython-399" in p], "the foreign pycs were written"
    assert installer.pyc_path("nodenet_cni/skel.py", node_tag) in runtime
    assert json.load(open(os.path.join(rdir, installer.MANIFEST)))["pyc_tag"] == node_tag
    done = subprocess.run([NODE_PYTHON, "-I", "-S", "-c", "import sys; sys.path.insert(0, %r); %s" % (rdir, IMPORTS)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert listing(rdir) == runtime


def rewrite(bundle, out, change):
    """Copy a bundle, letting change(name, data) alter or drop (None) each member."""
    with tarfile.open(str(bundle), "r:gz") as src, tarfile.open(str(out), "w:gz") as dst:
        for member in src.getmembers():
            data = change(member.name, src.extractfile(member).read())
            if data is not None:
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize("how, words", [
    ("alter", "a pyc differs"),
    ("drop", "not one per source"),
])
def test_a_damaged_pyc_in_the_bundle_is_refused(tmp_path, files, pycs, how, words):
    bundle, bad = tmp_path / "bundle.tar.gz", tmp_path / "bad.tar.gz"
    installer.write_bundle(files, str(bundle), pycs=pycs)
    victim = installer.pyc_path("nodenet_cni/skel.py", pycs["cache_tag"])

    def change(name, data):
        if name != victim:
            return data
        return None if how == "drop" else data[:20] + bytes([data[20] ^ 1]) + data[21:]

    rewrite(bundle, bad, change)
    with pytest.raises(ValueError, match=words):
        installer.read_bundle(str(bad))
