# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Installing the Python CNI plugins into a CNI bin dir.

The installed plugins must run on the node's own python3 with nothing else
installed by hand, so we ship a *bundle*: this collection's `cni` package
(as `nodenet_cni`) plus the pure-Python libraries it uses (pyroute2,
netaddr). The bundle is built on the controller (`collect_sources`,
`write_bundle`), unpacked on the node into a content-addressed directory
under `lib_dir`, byte-compiled for the node's interpreter, and exposed as
small launcher scripts in `bin_dir`. Every write is atomic (temp + rename),
so a runtime exec'ing a plugin during an upgrade sees the old or the new
one, never half of either.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from typing import Dict, List, Optional, Tuple, cast

from ..agent import DEFAULT_PORT, DEFAULT_RUN_DIR
from ..agent import shim
from ..fileio import atomic_write

PACKAGE_NAME = "nodenet_cni"
BUNDLED_LIBRARIES = ("pyroute2", "netaddr")
# Data files of the bundled libraries that nothing on a node reads: netaddr's
# IEEE MAC-vendor registries (8.9 MB, 80 % of the bundle before this), loaded
# only by EUI(...).oui / .iab look-ups, which no plugin or module makes.
# pyroute2's subpackages that nothing on a Linux node can import (its own
# __init__, IPRoute, NDB and the rest import none of them): the BSD backend,
# the DHCP client with its `ext` helpers, the test fixtures, the packet
# decoder tool and the wirouting demo (44 sources, each also a pyc: fewer
# files for every node to create, the runtime's largest install cost).
# A name ending in "/" is a whole directory.
BUNDLE_EXCLUDES = {
    "netaddr": frozenset(("eui/oui.txt", "eui/oui.idx", "eui/iab.txt", "eui/iab.idx")),
    "pyroute2": frozenset(("bsd/", "dhcp/", "ext/", "fixtures/", "decoder/", "wirouting/")),
}
MANIFEST = "MANIFEST.json"
LAUNCHER_MARK = shim.LAUNCHER_MARK
# the installed name <prefix>agent maps to this (not a plugin: the node agent)
AGENT = ":agent"

# canonical plugin -> default installed name (not overwriting a Go plugin set)
DEFAULT_PREFIX = "nodenet-"
PLUGINS = ("bridge", "host-local", "loopback", "portmap")
# the installed plugins run on the node's own python3
MIN_NODE_PYTHON = (3, 9)
LAUNCHER_MODE = 0o755


def plugin_names(plugins: List[str], prefix: str, reference_names: bool, agent: bool = False) -> Dict[str, str]:
    """installed file name -> canonical plugin name (AGENT for <prefix>agent)."""
    names: Dict[str, str] = {}
    for canonical in plugins:
        names[prefix + canonical] = canonical
        if reference_names:
            names[canonical] = canonical
    if agent:
        names[prefix + shim.AGENT_NAME] = AGENT
    return names


# ---------------------------------------------------------------------------
# controller side: gather and pack


def _package_files(root: str, arcroot: str, excludes: frozenset = frozenset()) -> Dict[str, bytes]:
    files: Dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d != "__pycache__" and d != "tests" and os.path.relpath(os.path.join(dirpath, d), root) + "/" not in excludes
        )
        for fname in sorted(filenames):
            if fname.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, root)
            if rel in excludes:
                continue
            with open(full, "rb") as f:
                files[os.path.join(arcroot, rel)] = f.read()
    return files


def collect_sources() -> Dict[str, bytes]:
    """Bundle contents (relative path -> bytes) from this Python's import path."""
    import importlib.util

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the cni package
    if not os.path.isdir(here):
        raise RuntimeError("the cni package is not on disk at %s (run from a collection checkout)" % here)
    files = _package_files(here, PACKAGE_NAME)
    for lib in BUNDLED_LIBRARIES:
        spec = importlib.util.find_spec(lib)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("python library %r is needed to build the plugin bundle" % lib)
        files.update(_package_files(list(spec.submodule_search_locations)[0], lib, BUNDLE_EXCLUDES.get(lib, frozenset())))
    return files


# Byte-compiled once on the controller (compile_sources) and shipped with the
# sources, so a node whose plugin interpreter has the controller's cache tag
# and magic number skips compileall (about 0.45 s of CPU per node). The pycs
# are unchecked-hash pycs (PEP 552): valid whatever the files' mtimes after
# unpacking, and never checked against the source at import (no read and hash
# of each source on every plugin exec); what runs is held by the runtime's
# per-file SHA-256 instead, like the sources. A node with another interpreter
# compiles them itself, as before. The bundle digest covers the sources only.
PYC_UNCHECKED_HASH = 0b01  # the pyc header's flags: hash-based, check_source off


def pyc_path(rel: str, cache_tag: str) -> str:
    """Where the interpreter with `cache_tag` looks for the pyc of source `rel` (importlib.util.cache_from_source)."""
    head, tail = os.path.split(rel)
    return os.path.join(head, "__pycache__", "%s.%s.pyc" % (tail[: -len(".py")], cache_tag))


def compile_sources(files: Dict[str, bytes]) -> Dict[str, object]:
    """The bundle's pycs for this interpreter: {"cache_tag", "magic", "files": {pyc path: bytes}}
    (each .py compiled at optimization level 0, as the plugins run), or {} when this
    interpreter caches no bytecode or a source does not compile here (the node compiles then)."""
    import importlib.util
    import marshal
    import sys

    cache_tag = sys.implementation.cache_tag
    if not cache_tag:
        return {}
    pycs: Dict[str, bytes] = {}
    header = importlib.util.MAGIC_NUMBER + PYC_UNCHECKED_HASH.to_bytes(4, "little")
    for rel, data in files.items():
        if not rel.endswith(".py"):
            continue
        try:
            code = compile(data, rel, "exec", dont_inherit=True, optimize=0)
        except (SyntaxError, ValueError):
            return {}
        pycs[pyc_path(rel, cache_tag)] = header + importlib.util.source_hash(data) + marshal.dumps(code)
    return {"cache_tag": cache_tag, "magic": importlib.util.MAGIC_NUMBER.hex(), "files": pycs}


def bundle_digest(files: Dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def write_bundle(files: Dict[str, bytes], path: str, pycs: Optional[Dict[str, object]] = None, compresslevel: int = 3) -> str:
    """Write a reproducible tar.gz of the bundle (with `pycs`, compile_sources()'s, each
    right after its source, where gzip's window finds the strings they share); returns its digest."""
    digest = bundle_digest(files)
    compiled = cast(Dict[str, bytes], (pycs or {}).get("files") or {})
    meta: Dict[str, object] = {"digest": digest, "files": sorted(files)}
    if compiled:
        meta["pyc"] = {"cache_tag": pycs["cache_tag"], "magic": pycs["magic"],  # type: ignore[index]
                       "sha256": {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(compiled.items())}}
    members: List[Tuple[str, bytes]] = []
    for rel, data in sorted(files.items()):
        members.append((rel, data))
        if compiled and rel.endswith(".py"):
            members.append((pyc_path(rel, str(pycs["cache_tag"])), compiled[pyc_path(rel, str(pycs["cache_tag"]))]))  # type: ignore[index]
    # gzip level 3 (sources only): 5x faster than the default 9 for ~13% more bytes; every run builds it.
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=compresslevel) as tar:
        manifest = json.dumps(meta, indent=1).encode()
        for rel, data in members + [(MANIFEST, manifest)]:
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return digest


def read_bundle(path: str) -> Tuple[str, Dict[str, bytes], Dict[str, object]]:
    """(digest, sources, pycs) of the bundle file at `path`: parse_bundle()'s."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(m.name, tar.extractfile(m).read() if m.isfile() else None) for m in tar]  # type: ignore[union-attr]
    return parse_bundle(members, path)


def parse_bundle(members: List[Tuple[str, Optional[bytes]]], where: str) -> Tuple[str, Dict[str, bytes], Dict[str, object]]:
    """(digest, sources, pycs) of a bundle's tar members (name, bytes; None for anything but a
    regular file): the pycs as compile_sources() made them, each checked against the bundle's
    MANIFEST, one for every source; {} when the bundle has none. ValueError names what is wrong."""
    files: Dict[str, bytes] = {}
    compiled: Dict[str, bytes] = {}
    meta: Dict[str, object] = {}
    for name, data in members:
        if data is None or name.startswith("/") or ".." in name.split("/"):
            raise ValueError("unsafe member %r in plugin bundle" % name)
        if name == MANIFEST:
            meta = json.loads(data)
        elif name.endswith(".pyc"):
            compiled[name] = data
        else:
            files[name] = data
    digest = str(meta.get("digest", ""))
    if bundle_digest(files) != digest:
        raise ValueError("plugin bundle %s is corrupt: digest mismatch" % where)
    pyc = meta.get("pyc") if isinstance(meta.get("pyc"), dict) else None
    if not pyc:
        if compiled:
            raise ValueError("plugin bundle %s has pycs its MANIFEST does not list" % where)
        return digest, files, {}
    hashes = pyc.get("sha256") or {}
    cache_tag = str(pyc.get("cache_tag", ""))
    expected = {pyc_path(rel, cache_tag) for rel in files if rel.endswith(".py")}
    if set(compiled) != expected or set(hashes) != expected:
        raise ValueError("plugin bundle %s is corrupt: its pycs are not one per source" % where)
    if any(hashlib.sha256(data).hexdigest() != hashes[rel] for rel, data in compiled.items()):
        raise ValueError("plugin bundle %s is corrupt: a pyc differs from its MANIFEST" % where)
    return digest, files, {"cache_tag": cache_tag, "magic": str(pyc.get("magic", "")), "files": compiled}


# ---------------------------------------------------------------------------
# node side: plan and apply


def render_launcher(canonical: str, interpreter: str, runtime_dir: str, port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR) -> str:
    """A plugin's bash shim (to the node agent, else in-process), or the agent launcher for AGENT."""
    if canonical == AGENT:
        return shim.render_agent(interpreter, runtime_dir, port, run_dir)
    return shim.render_shim(canonical, interpreter, runtime_dir, port, run_dir)


def launcher_runtime_dir(path: str) -> Optional[str]:
    """The runtime directory a managed launcher at `path` names, or None."""
    if not is_managed(path):
        return None
    header = shim.parse_header(_read(path) or "")
    return header["rdir"] if header else None


def runtime_dir_for(lib_dir: str, digest: str) -> str:
    return os.path.join(lib_dir, digest[:16])


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def current_state(bin_dir: str, lib_dir: str, names: Dict[str, str]) -> Dict[str, object]:
    """What is installed now, normalised for before/after comparison."""
    launchers: Dict[str, object] = {}
    for installed in sorted(names):
        text = _read(os.path.join(bin_dir, installed))
        if text is None:
            launchers[installed] = None
        elif LAUNCHER_MARK in text:
            mode = _mode(os.path.join(bin_dir, installed))
            launchers[installed] = text if mode == LAUNCHER_MODE else text + _MODE_NOTE % mode
        else:
            launchers[installed] = "(a file not managed by nodenet.cni)"
    return {"launchers": launchers, "runtimes": sorted(runtime_labels(lib_dir).values())}


def desired_state(
    bin_dir: str, lib_dir: str, names: Dict[str, str], digest: str, interpreter: str, port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR
) -> Dict[str, object]:
    rdir = runtime_dir_for(lib_dir, digest)
    labels = runtime_labels(lib_dir)
    kept = {labels.get(entry, entry) for entry in _runtimes_used_by_others(bin_dir, lib_dir, names)}
    return {
        "launchers": {n: render_launcher(c, interpreter, rdir, port, run_dir) for n, c in sorted(names.items())},
        "runtimes": sorted(kept | {os.path.basename(rdir)}),
    }


# ---------------------------------------------------------------------------
# the runtime directory: modes, verification, retention
#
# Root executes every file of a runtime, so: the lib_dir chain must be
# writable by root alone; every file is written 0644 and every directory
# 0755 whatever the umask, owned by root, on disk (one syncfs) before the
# directory is renamed into place; an existing runtime is reused only if every file
# matches the per-file SHA-256 of its MANIFEST and the bundle (else it is
# rebuilt and the run reports changed); and a superseded runtime is kept
# while any process may still use it (docs/internals.md, "Runtime retention").

RUNTIME_DIR_MODE = 0o755
RUNTIME_FILE_MODE = 0o644
# byte-compiling ~700 files takes seconds; a wedged interpreter must not hang the play
COMPILE_TIMEOUT = 600
RETIRED_PREFIX = ".retired-"
_TRASH_PREFIX = ".trash-"


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid())


def check_lib_dir_chain(lib_dir: str) -> None:
    """Refuse a lib_dir that someone other than root could change under us.

    Every existing directory from / down to lib_dir (as given and as
    resolved) must be owned by root (or the installing user) and not group-
    or world-writable; a root-owned sticky directory (/tmp) is accepted,
    since others cannot rename or delete our entries in it.
    """
    paths = {os.path.abspath(lib_dir), os.path.realpath(lib_dir)}
    for path in paths:
        parts = path.split(os.sep)
        for i in range(1, len(parts) + 1):
            component = os.sep + os.path.join(*parts[1:i]) if i > 1 else os.sep
            try:
                st = os.lstat(component)
            except FileNotFoundError:
                break  # the rest will be made by us, 0755
            if stat.S_ISLNK(st.st_mode):
                continue  # its target is checked through the resolved path
            if not stat.S_ISDIR(st.st_mode):
                raise RuntimeError("lib_dir %s: %s is not a directory" % (lib_dir, component))
            if not _owner_ok(st):
                raise RuntimeError("lib_dir %s: %s is owned by uid %d, not root; refusing to install code root runs there" % (lib_dir, component, st.st_uid))
            writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            if writable and not (st.st_mode & stat.S_ISVTX and st.st_uid == 0):
                raise RuntimeError(
                    "lib_dir %s: %s is group- or world-writable (mode %04o); refusing to install code root runs there"
                    % (lib_dir, component, stat.S_IMODE(st.st_mode))
                )


def _manifest(rdir: str) -> Optional[Dict[str, object]]:
    try:
        fd = os.open(os.path.join(rdir, MANIFEST), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def runtime_problems(rdir: str, files: Optional[Dict[str, bytes]] = None) -> List[str]:
    """What is wrong with an unpacked runtime ([] = intact): against its MANIFEST's
    per-file SHA-256 (and against `files`, the bundle, when given), modes and owner."""
    manifest = _manifest(rdir)
    hashes = manifest.get("sha256") if manifest else None
    if not isinstance(hashes, dict):
        return ["no per-file hashes in %s" % MANIFEST]
    problems: List[str] = []
    if files is not None:
        for rel, data in files.items():
            if hashes.get(rel) != hashlib.sha256(data).hexdigest():
                problems.append("%s differs from the bundle" % rel)
        if set(r for r in hashes if not r.endswith(".pyc")) != set(files):
            problems.append("file list differs from the bundle")
    other_tag = str(manifest.get("pyc_tag", "")) if manifest else ""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(rdir):
        st = os.lstat(dirpath)
        if stat.S_IMODE(st.st_mode) != RUNTIME_DIR_MODE or not _owner_ok(st):
            problems.append("%s: mode %04o" % (os.path.relpath(dirpath, rdir), stat.S_IMODE(st.st_mode)))
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, rdir)
            if rel == MANIFEST:
                continue
            st = os.lstat(full)
            if rel not in hashes:
                # another interpreter run on the same runtime caches its own bytecode: not ours, harmless
                if name.endswith(".pyc") and os.path.basename(dirpath) == "__pycache__" and other_tag and ("." + other_tag + ".") not in name:
                    continue
                problems.append("%s is not part of the runtime" % rel)
                continue
            seen.add(rel)
            if not stat.S_ISREG(st.st_mode):
                problems.append("%s is not a regular file" % rel)
            elif stat.S_IMODE(st.st_mode) != RUNTIME_FILE_MODE or not _owner_ok(st):
                problems.append("%s: mode %04o" % (rel, stat.S_IMODE(st.st_mode)))
            elif _sha256_file(full) != hashes[rel]:
                problems.append("%s was modified" % rel)
    problems += ["%s is missing" % rel for rel in sorted(set(hashes) - seen)]
    return problems


def runtime_labels(lib_dir: str) -> Dict[str, str]:
    """{runtime dir name: its label in the normalised state} for the live (not retired) runtimes.

    An intact runtime is labelled by its name; a damaged one by its name and
    what is wrong, so a repair shows as a change.
    """
    if not os.path.isdir(lib_dir):
        return {}
    out: Dict[str, str] = {}
    for entry in sorted(os.listdir(lib_dir)):
        rdir = os.path.join(lib_dir, entry)
        if entry.startswith(".") or os.path.islink(rdir) or not os.path.isfile(os.path.join(rdir, MANIFEST)):
            continue
        if os.path.exists(os.path.join(lib_dir, RETIRED_PREFIX + entry)):
            continue  # superseded, kept only until no process uses it
        problems = runtime_problems(rdir)
        out[entry] = entry if not problems else "%s (damaged: %s%s)" % (entry, "; ".join(problems[:3]), ", ..." if len(problems) > 3 else "")
    return out


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private(path: str, data: bytes) -> str:
    """A new file (never an existing one), root's and RUNTIME_FILE_MODE whatever the umask;
    returns the data's SHA-256 (the MANIFEST's, without reading the file back)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, RUNTIME_FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        if os.geteuid() == 0:
            os.fchown(f.fileno(), 0, 0)
        os.fchmod(f.fileno(), RUNTIME_FILE_MODE)
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def _seal(staging: str, written: Dict[str, str]) -> Dict[str, str]:
    """Explicit modes and owner on everything; returns {rel: sha256}. `written` are the
    files _write_private made (already sealed, hashed from their data); the rest (the
    pycs compileall wrote) are sealed and hashed here."""
    hashes: Dict[str, str] = {}
    as_root = os.geteuid() == 0
    for dirpath, dirnames, filenames in os.walk(staging):
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, staging)
            if rel in written:
                hashes[rel] = written[rel]
                continue
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                if as_root:
                    os.fchown(fd, 0, 0)
                os.fchmod(fd, RUNTIME_FILE_MODE)
            finally:
                os.close(fd)
            hashes[rel] = _sha256_file(full)
        if as_root:
            os.lchown(dirpath, 0, 0)
        os.chmod(dirpath, RUNTIME_DIR_MODE)
    return hashes


def _syncfs(path: str) -> bool:
    """syncfs(2) on the filesystem holding `path`: every file and directory written there
    reaches the disk in one call (Linux; since 5.8 it reports write-back errors). False
    where libc has no syncfs (then the caller fsyncs file by file)."""
    try:
        import ctypes  # only here: the plugins' own imports stay lean

        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (ImportError, OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "syncfs(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)
    return True


def _flush_tree(staging: str) -> None:
    """Everything under `staging` on disk before it is renamed into place: one syncfs(2)
    for the whole tree (a runtime is ~750 files: as many fsyncs, each a journal commit,
    took 0.1 s on a fast VM disk and take seconds on a cloud volume), else the fsync
    of every file and directory."""
    if _syncfs(staging):
        return
    for dirpath, _dirnames, filenames in os.walk(staging, topdown=False):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(dirpath)


def _compile_runtime(staging: str, interpreter: str) -> None:
    try:
        proc = subprocess.run(
            [interpreter, "-I", "-m", "compileall", "-q", staging],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMPILE_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError("byte-compiling the plugin runtime with %s did not finish in %ds" % (interpreter, COMPILE_TIMEOUT))
    if proc.returncode != 0:
        raise RuntimeError("byte-compiling the plugin runtime with %s failed: %s" % (interpreter, proc.stdout.decode(errors="replace")[-2000:]))


def unpack_runtime(lib_dir: str, digest: str, files: Dict[str, bytes], interpreter: str, pycs: Optional[Dict[str, bytes]] = None) -> str:
    return _unpack_runtime(lib_dir, digest, files, interpreter, pycs)[0]


def _unpack_runtime(lib_dir: str, digest: str, files: Dict[str, bytes], interpreter: str, pycs: Optional[Dict[str, bytes]]) -> Tuple[str, str]:
    """Unpack into <lib_dir>/<digest16>, byte-compiled, sealed and verified; atomic via rename.

    `pycs` ({pyc path: bytes}, from usable_pycs()) are written as they are
    instead of byte-compiling on the node. An existing runtime is reused only
    when runtime_problems() finds nothing; otherwise it is rebuilt and swapped in.
    """
    rdir = runtime_dir_for(lib_dir, digest)
    if not os.path.isdir(lib_dir):
        os.makedirs(lib_dir, mode=RUNTIME_DIR_MODE)
        os.chmod(lib_dir, RUNTIME_DIR_MODE)
    check_lib_dir_chain(lib_dir)
    retired = os.path.join(lib_dir, RETIRED_PREFIX + os.path.basename(rdir))
    if os.path.isfile(os.path.join(rdir, MANIFEST)) and not os.path.islink(rdir) and not runtime_problems(rdir, files):
        _unlink_quietly(retired)  # wanted again (a roll-back): live
        return rdir, ""
    staging = tempfile.mkdtemp(prefix=".staging-", dir=lib_dir)
    try:
        written: Dict[str, str] = {}
        for rel, data in list(files.items()) + list((pycs or {}).items()):
            target = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(target), mode=RUNTIME_DIR_MODE, exist_ok=True)
            written[os.path.relpath(target, staging)] = _write_private(target, data)
        # Compiled for the interpreter that will run the plugins (every exec saves the parse):
        # by the controller when its pycs suit that interpreter, else here.
        if not pycs:
            _compile_runtime(staging, interpreter)
        hashes = _seal(staging, written)
        tags = {name.split(".")[-2] for name in hashes if name.endswith(".pyc") and name.count(".") >= 2}
        manifest = {"digest": digest, "files": sorted(files), "pyc_tag": sorted(tags)[0] if len(tags) == 1 else "", "sha256": hashes}
        _write_private(os.path.join(staging, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True).encode())
        _flush_tree(staging)
        if os.path.lexists(rdir):  # damaged or half-made: swap the rebuilt one in
            trash = tempfile.mkdtemp(prefix=_TRASH_PREFIX, dir=lib_dir)
            os.rename(rdir, os.path.join(trash, "old"))
            os.rename(staging, rdir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(staging, rdir)
        _fsync_dir(lib_dir)
        _unlink_quietly(retired)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return rdir, ("bundled" if pycs else "compiled on the node")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _processes_using(paths: List[str]) -> bool:
    """Does any running process name one of `paths` (a launcher or a runtime dir) in its argv?

    A launcher exec'd just before it was rewritten reads its old text and
    imports the old runtime: while its command line names the launcher, the
    old runtime may be needed.
    """
    prefixes = tuple(p.rstrip("/") + "/" for p in paths)
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return True  # cannot tell: keep
    for pid in pids:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if any(arg in paths or arg.startswith(prefixes) for arg in argv):
            return True
    return False


def retire_runtime(bin_dir: str, lib_dir: str, entry: str) -> bool:
    """Remove a superseded runtime unless a process may use it; True when removed.

    Used by a process = a running plugin holds its shared flock (taken when
    nodenet_cni is imported from it), or a process runs one of our launchers
    in bin_dir or names the runtime dir. A kept runtime is marked retired
    (no longer part of the reported state) and removed by a later run.
    """
    rdir = os.path.join(lib_dir, entry)
    record = os.path.join(lib_dir, RETIRED_PREFIX + entry)
    try:
        fd = os.open(rdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        _unlink_quietly(record)
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free = True
        except OSError:
            free = False
        # (the resident agent runs its launcher forever; it holds the flock of the runtime it uses)
        launchers = [os.path.join(bin_dir, n) for n in (os.listdir(bin_dir) if os.path.isdir(bin_dir) else [])
                     if is_managed(os.path.join(bin_dir, n)) and not (shim.read_header(os.path.join(bin_dir, n)) or {}).get("agent")]
        if free and not _processes_using(launchers + [rdir]):
            # under our exclusive lock: out of the way first, so no new plugin finds it
            trash = tempfile.mkdtemp(prefix=_TRASH_PREFIX, dir=lib_dir)
            os.rename(rdir, os.path.join(trash, "old"))
            shutil.rmtree(trash, ignore_errors=True)
            _unlink_quietly(record)
            return True
    finally:
        os.close(fd)
    if not os.path.exists(record):
        atomic_write(record, b"%d\n" % int(time.time()), 0o644)
    return False


def apply_state(
    bin_dir: str,
    lib_dir: str,
    names: Dict[str, str],
    digest: str,
    files: Dict[str, bytes],
    interpreter: str,
    port: int = DEFAULT_PORT,
    run_dir: str = DEFAULT_RUN_DIR,
    pycs: Optional[Dict[str, bytes]] = None,
) -> str:
    """Make the node match desired_state(); the caller compares before/after.
    `pycs`: usable_pycs(), written instead of byte-compiling on the node.
    Returns how the runtime was byte-compiled if it was unpacked now ("bundled"
    or "compiled on the node"), else "" (the runtime was there, intact)."""
    # Modes as a package install makes them whatever the caller's umask (sudo keeps a login user's 077):
    # the runtime gets explicit modes anyway; this covers a bin_dir made here, the byte-compiler, the rest.
    previous_umask = os.umask(0o022)
    try:
        return _apply_state(bin_dir, lib_dir, names, digest, files, interpreter, port, run_dir, pycs)
    finally:
        os.umask(previous_umask)


def _apply_state(
    bin_dir: str, lib_dir: str, names: Dict[str, str], digest: str, files: Dict[str, bytes], interpreter: str, port: int, run_dir: str,
    pycs: Optional[Dict[str, bytes]],
) -> str:
    os.makedirs(bin_dir, mode=0o755, exist_ok=True)
    rdir, compiled = _unpack_runtime(lib_dir, digest, files, interpreter, pycs)
    for installed, canonical in sorted(names.items()):
        path = os.path.join(bin_dir, installed)
        text = render_launcher(canonical, interpreter, rdir, port, run_dir)
        if _read(path) != text or _mode(path) != LAUNCHER_MODE:
            atomic_write(path, text.encode(), LAUNCHER_MODE)
    # Old runtimes are unreachable once every launcher points at the new one,
    # but a plugin started before may still be running from one: retire_runtime.
    keep = os.path.basename(rdir)
    for entry in os.listdir(lib_dir):
        if entry != keep and os.path.isfile(os.path.join(lib_dir, entry, MANIFEST)) and not _in_use(bin_dir, os.path.join(lib_dir, entry)):
            retire_runtime(bin_dir, lib_dir, entry)
    return compiled


def _in_use(bin_dir: str, rdir: str) -> bool:
    """Another launcher in bin_dir (e.g. a different name set) still points there."""
    for entry in os.listdir(bin_dir):
        text = _read(os.path.join(bin_dir, entry))
        if text and LAUNCHER_MARK in text and repr(rdir) in text:
            return True
    return False


def remove_state(bin_dir: str, lib_dir: str, names: Dict[str, str]) -> None:
    for installed in names:
        path = os.path.join(bin_dir, installed)
        text = _read(path)
        if text is not None and LAUNCHER_MARK in text:
            os.unlink(path)
    if os.path.isdir(lib_dir):
        for entry in os.listdir(lib_dir):
            full = os.path.join(lib_dir, entry)
            if os.path.isfile(os.path.join(full, MANIFEST)) and not _in_use(bin_dir, full):
                retire_runtime(bin_dir, lib_dir, entry)
        if not os.listdir(lib_dir):
            os.rmdir(lib_dir)


def install_local(
    bin_dir: str, names: Dict[str, str], interpreter: str, lib_dir: Optional[str] = None, port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR
) -> str:
    """Build the bundle from this checkout and install it (tests, bench, dev)."""
    lib_dir = lib_dir or default_lib_dir(bin_dir)
    files = collect_sources()
    digest = bundle_digest(files)
    apply_state(bin_dir, lib_dir, names, digest, files, interpreter, port, run_dir)
    return digest


def default_lib_dir(bin_dir: str) -> str:
    return os.path.join(bin_dir, ".nodenet-cni")


# ---------------------------------------------------------------------------
# planning helpers for the cni_plugin module (pure, testable without Ansible)

_MODE_NOTE = "\n# (mode %04o, not 0755)\n"


def _mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0


def is_managed(path: str) -> bool:
    """A regular file carrying our launcher mark (symlinks to Go plugins are not ours)."""
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    text = _read(path)
    return text is not None and LAUNCHER_MARK in text


def conflicts(bin_dir: str, names: Dict[str, str]) -> List[str]:
    """Installed names already taken by something cni_plugin did not make."""
    return sorted(n for n in names if os.path.lexists(os.path.join(bin_dir, n)) and not is_managed(os.path.join(bin_dir, n)))


def blocking_conflicts(bin_dir: str, names: Dict[str, str]) -> List[str]:
    """Conflicts even force cannot resolve: a directory sits where a launcher goes."""
    return sorted(n for n in conflicts(bin_dir, names) if os.path.isdir(os.path.join(bin_dir, n)) and not os.path.islink(os.path.join(bin_dir, n)))


def _runtimes_used_by_others(bin_dir: str, lib_dir: str, names: Dict[str, str]) -> List[str]:
    """Runtime dirs referenced by managed launchers in bin_dir outside `names`."""
    if not os.path.isdir(lib_dir) or not os.path.isdir(bin_dir):
        return []
    used = []
    for entry in sorted(os.listdir(lib_dir)):
        rdir = os.path.join(lib_dir, entry)
        if not os.path.isfile(os.path.join(rdir, MANIFEST)):
            continue
        for launcher in os.listdir(bin_dir):
            if launcher in names:
                continue
            text = _read(os.path.join(bin_dir, launcher))
            if text and LAUNCHER_MARK in text and repr(rdir) in text:
                used.append(entry)
                break
    return used


def absent_state(bin_dir: str, lib_dir: str, names: Dict[str, str]) -> Dict[str, object]:
    """What current_state() reads after remove_state(): foreign files stay."""
    before = current_state(bin_dir, lib_dir, names)
    launchers = cast(Dict[str, object], before["launchers"])
    return {
        "launchers": {n: (None if is_managed(os.path.join(bin_dir, n)) else v) for n, v in launchers.items()},
        "runtimes": _runtimes_used_by_others(bin_dir, lib_dir, names),
    }


def interpreter_info(interpreter: str) -> Dict[str, object]:
    """Run the node's interpreter once: {"version": (major, minor, micro), "cache_tag", "magic"}
    (what its pycs are named and start with); ValueError unless it is a Python >= 3.9."""
    if not os.path.isabs(interpreter):
        raise ValueError("%r is not an absolute path" % interpreter)
    if not os.path.isfile(interpreter) or not os.access(interpreter, os.X_OK):
        raise ValueError("%s does not exist or is not executable" % interpreter)
    script = "import sys, importlib.util as u; print('%d.%d.%d' % sys.version_info[:3], sys.implementation.cache_tag, u.MAGIC_NUMBER.hex())"
    try:
        proc = subprocess.run([interpreter, "-I", "-S", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValueError("%s could not be run: %s" % (interpreter, e)) from e
    out = proc.stdout.decode(errors="replace").strip()
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)(?: (\S+) ([0-9a-f]+))?$", out)
    if proc.returncode != 0 or not match:
        raise ValueError("%s is not a working Python interpreter: %s" % (interpreter, out[-500:]))
    version = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if version[:2] < MIN_NODE_PYTHON:
        raise ValueError("%s is Python %s; the plugins need Python %d.%d or newer" % ((interpreter, "%d.%d.%d" % version) + MIN_NODE_PYTHON))
    if not match.group(5):
        raise ValueError("%s is not a working Python interpreter: %s" % (interpreter, out[-500:]))
    return {"version": version, "cache_tag": match.group(4), "magic": match.group(5)}


def interpreter_version(interpreter: str) -> Tuple[int, int, int]:
    """Run the node's interpreter once; ValueError unless it is a Python >= 3.9."""
    return cast(Tuple[int, int, int], interpreter_info(interpreter)["version"])


def usable_pycs(pycs: Dict[str, object], info: Dict[str, object]) -> Optional[Dict[str, bytes]]:
    """The bundle's pycs (read_bundle()) if the interpreter described by `info`
    (interpreter_info()) loads them as they are: same cache tag, same magic number."""
    if not pycs or not pycs.get("files") or (pycs.get("cache_tag"), pycs.get("magic")) != (info.get("cache_tag"), info.get("magic")):
        return None
    return cast(Dict[str, bytes], pycs["files"])


def describe_launcher(text: object) -> str:
    """One readable line for a launcher's normalised state (for diffs)."""
    if text is None:
        return "absent"
    if not isinstance(text, str) or LAUNCHER_MARK not in text:
        return str(text)
    note = re.search(r"\n# \(mode (\d+), not 0755\)\n\Z", text)
    if note:
        text = text[: note.start()]
    header = shim.parse_header(text)
    if header is None:
        return "a nodenet.cni launcher, hand-edited"
    canonical = header["canonical"] or AGENT
    interpreter, rdir, port, run_dir = header["interpreter"], header["rdir"], int(header["port"]), header["run_dir"]
    what = "node agent" if canonical == AGENT else "%s plugin" % canonical
    line = "%s, runtime %s, on %s" % (what, os.path.basename(rdir), interpreter)
    if port != DEFAULT_PORT or run_dir != DEFAULT_RUN_DIR:
        line += ", agent on port %d, tokens in %s" % (port, run_dir)
    if text != render_launcher(canonical, interpreter, rdir, port, run_dir):
        line += ", hand-edited"
    if note:
        line += ", mode %s (want 0755)" % note.group(1)
    return line


def describe_state(state: Dict[str, object], bin_dir: str, lib_dir: str) -> str:
    """The normalised state as text, so `--diff` shows a readable line diff."""
    launchers = cast(Dict[str, object], state["launchers"])
    runtimes = cast(List[str], state["runtimes"])
    lines = ["launchers in %s:" % bin_dir]
    present = [(n, v) for n, v in sorted(launchers.items()) if v is not None]
    lines += ["  %s: %s" % (n, describe_launcher(v)) for n, v in present] or ["  (none)"]
    lines.append("runtimes in %s:" % lib_dir)
    lines += ["  %s" % r for r in runtimes] or ["  (none)"]
    return "\n".join(lines) + "\n"
