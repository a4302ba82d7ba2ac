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
from typing import Dict, List, Optional, Tuple, cast

from .cni.agent import DEFAULT_PORT, DEFAULT_RUN_DIR
from .cni.agent import shim
from .cni.fileio import atomic_write

PACKAGE_NAME = "nodenet_cni"
BUNDLED_LIBRARIES = ("pyroute2", "netaddr")
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


def _package_files(root: str, arcroot: str) -> Dict[str, bytes]:
    files: Dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and d != "tests")
        for fname in sorted(filenames):
            if fname.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, root)
            with open(full, "rb") as f:
                files[os.path.join(arcroot, rel)] = f.read()
    return files


def collect_sources() -> Dict[str, bytes]:
    """Bundle contents (relative path -> bytes) from this Python's import path."""
    import importlib.util

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cni")
    if not os.path.isdir(here):
        raise RuntimeError("the cni package is not on disk at %s (run from a collection checkout)" % here)
    files = _package_files(here, PACKAGE_NAME)
    for lib in BUNDLED_LIBRARIES:
        spec = importlib.util.find_spec(lib)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("python library %r is needed to build the plugin bundle" % lib)
        files.update(_package_files(list(spec.submodule_search_locations)[0], lib))
    return files


def bundle_digest(files: Dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def write_bundle(files: Dict[str, bytes], path: str) -> str:
    """Write a reproducible tar.gz of the bundle; returns its digest."""
    digest = bundle_digest(files)
    # gzip level 3: 5x faster than the default 9 for ~13% more bytes; every run builds it.
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=3) as tar:
        manifest = json.dumps({"digest": digest, "files": sorted(files)}, indent=1).encode()
        for rel, data in sorted(files.items()) + [(MANIFEST, manifest)]:
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return digest


def read_bundle(path: str) -> Tuple[str, Dict[str, bytes]]:
    files: Dict[str, bytes] = {}
    digest = ""
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or member.name.startswith("/") or ".." in member.name.split("/"):
                raise ValueError("unsafe member %r in plugin bundle" % member.name)
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == MANIFEST:
                digest = json.loads(data)["digest"]
            else:
                files[member.name] = data
    if bundle_digest(files) != digest:
        raise ValueError("plugin bundle %s is corrupt: digest mismatch" % path)
    return digest, files


# ---------------------------------------------------------------------------
# node side: plan and apply


def render_launcher(canonical: str, interpreter: str, runtime_dir: str, port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR) -> str:
    """A plugin's bash shim (to the node agent, else in-process), or the agent launcher for AGENT."""
    if canonical == AGENT:
        return shim.render_agent(interpreter, runtime_dir, port, run_dir)
    return shim.render_shim(canonical, interpreter, runtime_dir, port, run_dir)


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
    runtimes = sorted(d for d in os.listdir(lib_dir) if os.path.isfile(os.path.join(lib_dir, d, MANIFEST))) if os.path.isdir(lib_dir) else []
    return {"launchers": launchers, "runtimes": runtimes}


def desired_state(
    bin_dir: str, lib_dir: str, names: Dict[str, str], digest: str, interpreter: str, port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR
) -> Dict[str, object]:
    rdir = runtime_dir_for(lib_dir, digest)
    kept = set(_runtimes_used_by_others(bin_dir, lib_dir, names))
    return {
        "launchers": {n: render_launcher(c, interpreter, rdir, port, run_dir) for n, c in sorted(names.items())},
        "runtimes": sorted(kept | {os.path.basename(rdir)}),
    }


def unpack_runtime(lib_dir: str, digest: str, files: Dict[str, bytes], interpreter: str) -> str:
    """Unpack into <lib_dir>/<digest16>, byte-compiled; atomic via rename."""
    rdir = runtime_dir_for(lib_dir, digest)
    if os.path.isfile(os.path.join(rdir, MANIFEST)):
        return rdir
    os.makedirs(lib_dir, mode=0o755, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=lib_dir)
    try:
        for rel, data in files.items():
            target = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
        # Compile for the interpreter that will run the plugins: every exec saves the parse.
        proc = subprocess.run([interpreter, "-I", "-m", "compileall", "-q", staging], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            raise RuntimeError("byte-compiling the plugin runtime with %s failed: %s" % (interpreter, proc.stdout.decode(errors="replace")[-2000:]))
        with open(os.path.join(staging, MANIFEST), "w") as f:
            json.dump({"digest": digest, "files": sorted(files)}, f, indent=1)
        os.chmod(staging, 0o755)
        if os.path.exists(rdir):  # a leftover without manifest: half-made, replace it
            shutil.rmtree(rdir)
        os.rename(staging, rdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return rdir


def apply_state(
    bin_dir: str,
    lib_dir: str,
    names: Dict[str, str],
    digest: str,
    files: Dict[str, bytes],
    interpreter: str,
    port: int = DEFAULT_PORT,
    run_dir: str = DEFAULT_RUN_DIR,
) -> None:
    """Make the node match desired_state(); the caller compares before/after."""
    os.makedirs(bin_dir, mode=0o755, exist_ok=True)
    rdir = unpack_runtime(lib_dir, digest, files, interpreter)
    for installed, canonical in sorted(names.items()):
        path = os.path.join(bin_dir, installed)
        text = render_launcher(canonical, interpreter, rdir, port, run_dir)
        if _read(path) != text or _mode(path) != LAUNCHER_MODE:
            atomic_write(path, text.encode(), LAUNCHER_MODE)
    # Old runtimes are unreachable once every launcher points at the new one.
    keep = os.path.basename(rdir)
    for entry in os.listdir(lib_dir):
        if entry != keep and os.path.isfile(os.path.join(lib_dir, entry, MANIFEST)) and not _in_use(bin_dir, os.path.join(lib_dir, entry)):
            shutil.rmtree(os.path.join(lib_dir, entry), ignore_errors=True)


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
                shutil.rmtree(full, ignore_errors=True)
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


def interpreter_version(interpreter: str) -> Tuple[int, int, int]:
    """Run the node's interpreter once; ValueError unless it is a Python >= 3.9."""
    if not os.path.isabs(interpreter):
        raise ValueError("%r is not an absolute path" % interpreter)
    if not os.path.isfile(interpreter) or not os.access(interpreter, os.X_OK):
        raise ValueError("%s does not exist or is not executable" % interpreter)
    try:
        proc = subprocess.run(
            [interpreter, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValueError("%s could not be run: %s" % (interpreter, e)) from e
    out = proc.stdout.decode(errors="replace").strip()
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)$", out)
    if proc.returncode != 0 or not match:
        raise ValueError("%s is not a working Python interpreter: %s" % (interpreter, out[-500:]))
    version = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if version[:2] < MIN_NODE_PYTHON:
        raise ValueError("%s is Python %s; the plugins need Python %d.%d or newer" % ((interpreter, out) + MIN_NODE_PYTHON))
    return version


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
