# SPDX-License-Identifier: GPL-3.0-or-later
"""module_utils/runtime_bytecode.py: a module's `cni` package runs from the
installed plugin runtime's pycs only when each pyc is provably the module's
own source (source hash in its header) and sealed (its SHA-256 in the runtime's
MANIFEST); otherwise from the source, as without it.

Each case imports in a fresh interpreter with the finder put first, exactly as
the module's import of runtime_bytecode does, and asks where the code of
cni.spec came from (a pyc compiled by installer.compile_sources is named
nodenet_cni/...).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_PYC = installer.pyc_path("nodenet_cni/spec.py", sys.implementation.cache_tag)

PROBE = """
import sys
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode as rb
sys.meta_path.insert(0, rb._Finder(rb._runtimes([sys.argv[1]])))
from ansible_collections.nodenet.cni.plugins.module_utils.cni import spec
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import part
print(spec.CNIError.__init__.__code__.co_filename)
print(spec.__name__, spec.__file__.endswith("spec.py"))
"""


def install(bin_dir: str, files=None) -> str:
    files = dict(files or installer.collect_sources())
    pycs = installer.compile_sources(files)["files"]
    names = installer.plugin_names(["loopback"], "nodenet-", False)
    lib_dir = installer.default_lib_dir(bin_dir)
    digest = installer.bundle_digest(files)
    installer.apply_state(bin_dir, lib_dir, names, digest, files, sys.executable, pycs=pycs)
    return installer.runtime_dir_for(lib_dir, digest)


def probe(bin_dir: str):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections"))
    proc = subprocess.run([sys.executable, "-c", PROBE, bin_dir], capture_output=True, text=True, timeout=60, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\n")[:2]


@pytest.fixture(scope="module")
def sources():
    return installer.collect_sources()


def test_the_runtimes_bytecode_is_used_when_it_is_the_same_source(tmp_path, sources):
    install(str(tmp_path / "bin"), sources)
    filename, names = probe(str(tmp_path / "bin"))
    assert filename == "nodenet_cni/spec.py"
    assert names == "ansible_collections.nodenet.cni.plugins.module_utils.cni.spec True", "the module keeps its own name and file"


def test_a_modified_pyc_is_not_used(tmp_path, sources):
    rdir = install(str(tmp_path / "bin"), sources)
    path = os.path.join(rdir, SPEC_PYC)
    os.chmod(path, 0o644)
    with open(path, "ab") as f:
        f.write(b"\0")
    filename, _names = probe(str(tmp_path / "bin"))
    assert filename.endswith("/cni/spec.py") and not filename.startswith("nodenet_cni/")


def test_another_versions_runtime_is_not_used(tmp_path, sources):
    other = dict(sources)
    other["nodenet_cni/spec.py"] = other["nodenet_cni/spec.py"] + b"\n# another version\n"
    install(str(tmp_path / "bin"), other)
    filename, _names = probe(str(tmp_path / "bin"))
    assert not filename.startswith("nodenet_cni/")


def test_no_runtime_no_finder(tmp_path):
    filename, _names = probe(str(tmp_path / "nothing"))
    assert not filename.startswith("nodenet_cni/")


ZIP_PROBE = """
import builtins, sys, zipimport
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode as rb
zip_path, patch = sys.argv[1], sys.argv[2] == "patch"
importer = zipimport.zipimporter(zip_path)
names = ["zpkg", "zpkg.mod", "zpkg.sub", "zpkg.sub.leaf"]
original = [zipimport.zipimporter(zip_path + "/" + "/".join(n.split(".")[:-1])).get_filename(n) if "." in n else importer.get_filename(n) for n in names]
if patch:
    assert rb.patch_zipimport()
compiled = []
real_compile = builtins.compile
def counting(source, filename, *args, **kwargs):
    if str(filename).startswith(zip_path):
        compiled.append(filename)
    return real_compile(source, filename, *args, **kwargs)
builtins.compile = counting
sys.path.insert(0, zip_path)
import zpkg.mod, zpkg.sub.leaf
builtins.compile = real_compile
after = [sys.modules[n].__file__ for n in names]
print(len(compiled), original == after, zpkg.sub.leaf.VALUE)
"""


def test_zip_modules_are_compiled_once(tmp_path):
    """zipimport (3.8-3.12) compiles a module for its spec's file name and again to run it:
    with the patch, once, and every module keeps the file name the original would give."""
    import zipfile

    path = str(tmp_path / "payload.zip")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("zpkg/__init__.py", "")
        z.writestr("zpkg/mod.py", "X = 1\n")
        z.writestr("zpkg/sub/__init__.py", "")
        z.writestr("zpkg/sub/leaf.py", "VALUE = 42\n")
    runs = {}
    for mode in ("patch", "plain"):
        proc = subprocess.run([sys.executable, "-c", ZIP_PROBE, path, mode], capture_output=True, text=True, cwd=ROOT, check=False,
                              env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections")))
        assert proc.returncode == 0, proc.stderr
        runs[mode] = proc.stdout.split()
    assert runs["patch"] == ["4", "True", "42"], runs
    if sys.version_info < (3, 13):
        assert runs["plain"][0] == "8", "this Python's zipimport no longer compiles twice: %s" % runs
