# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_plugin's no-change verdict without a module run on the node (controller side).

A no-change re-run of cni_plugin used to be one module run per node: a
Python start, Ansible's module_utils.basic and ours compiled from the
AnsiballZ zip (0.4 CPU s) to find that nothing differs. Here the action
plugin runs one shell command instead (`find`, `sha256sum`, `cat`: coreutils
and findutils, what every node has) that lists what the module's
installer.current_state() reads: the launchers' types, modes and SHA-256,
the lib_dir's entries, the runtime's tree (types, modes, owners), every
runtime file's SHA-256 and the MANIFEST. verdict() applies the module's own
rules (installer.current_state / desired_state / runtime_problems) to that
listing on the controller.

The verdict is one-sided: "current" only on positive evidence that the
module would find before == desired (every launcher a regular 0755 file with
exactly the text the module renders, the lib_dir holding this runtime and
nothing else, every runtime file there with its MANIFEST hash, mode and
owner, nothing more); "absent" when the runtime's MANIFEST is certainly not
there (the bundle goes with the first module run); "unknown" for anything
else (a missing tool, an unexpected entry, a drift) - then the module runs
as before and decides, repairs and reports changed. So a drifted node is
never skipped; at worst a node the module would find up to date gets the
module run it always got.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from hashlib import sha256
from typing import Dict, List, Optional

from ansible.module_utils.parsing.convert_bool import boolean

from .cni.node import install_cli, installer

ABSENT = "absent"
CURRENT = "current"
UNKNOWN = "unknown"

# the options the module takes besides the internal src/digest (its argument_spec)
_OPTIONS = frozenset(("bin_dir", "lib_dir", "plugins", "prefix", "reference_names", "force", "interpreter", "agent", "agent_port", "agent_run_dir", "state"))
# the module's own rules and defaults (cni/node/install_cli.py)
_SAFE_PATH_RE = install_cli.SAFE_PATH_RE
_PREFIX_RE = install_cli.PREFIX_RE
_DEFAULTS = {option: spec.get("default") for option, spec in install_cli.ARGUMENT_SPEC.items()}


def _bool(value: object) -> Optional[bool]:
    """The option's boolean as the module's argument spec would read it; None when it would refuse it."""
    try:
        return boolean(value, strict=True)
    except TypeError:
        return None


class Plan:
    """What the module would install for these arguments, when they are plain enough
    to tell here (else plan() returns None and the module decides, as always)."""

    def __init__(self, bin_dir: str, lib_dir: str, names: Dict[str, str], digest: str, interpreter: str, port: int, run_dir: str, agent: bool) -> None:
        self.bin_dir, self.lib_dir, self.digest, self.interpreter = bin_dir, lib_dir, digest, interpreter
        self.port, self.run_dir = port, run_dir  # where the launchers find the agent
        self.rdir = installer.runtime_dir_for(lib_dir, digest)
        self.launchers = {
            posixpath.join(bin_dir, n): sha256(installer.render_launcher(c, interpreter, self.rdir, port, run_dir).encode()).hexdigest()
            for n, c in sorted(names.items())
        }
        # what the module returns when nothing changes
        self.result: Dict[str, object] = dict(
            changed=False,
            lib_dir=lib_dir,
            digest=digest,
            runtime_dir=self.rdir,
            plugins={n: dict(plugin=c, path=posixpath.join(bin_dir, n)) for n, c in sorted(names.items()) if c != installer.AGENT},
        )
        if agent:
            self.result["agent"] = posixpath.join(bin_dir, [n for n, c in names.items() if c == installer.AGENT][0])

    def command(self) -> str:
        """One POSIX shell command; its output is read by verdict()."""
        q = shlex.quote
        launchers = " ".join(q(p) for p in sorted(self.launchers))
        return "; ".join(
            (
                "R=%s; L=%s" % (q(self.rdir), q(self.lib_dir)),
                'if [ ! -f "$R/%s" ]; then echo %s; exit 0; fi' % (installer.MANIFEST, ABSENT),
                "echo '== euid'; id -u",
                "echo '== python'; %s -I -S -c 'import sys; print(sys.version_info[:2] >= (%d, %d))' 2>&1"
                % ((q(self.interpreter),) + installer.MIN_NODE_PYTHON),
                "echo '== lib'; find \"$L\" -mindepth 1 -maxdepth 1 -printf '%y %f\\n'",
                "echo '== launchers'; find " + launchers + " -maxdepth 0 -printf '%y %m %U %p\\n' 2>/dev/null",
                "echo '== launcher sha256'; sha256sum -- " + launchers + " 2>/dev/null",
                "echo '== tree'; find \"$R\" -printf '%y %m %U %P\\n'",
                "echo '== sha256'; (cd \"$R\" && find . -type f ! -path ./%s -exec sha256sum -- {} +)" % installer.MANIFEST,
                "echo '== manifest'; cat \"$R/%s\"" % installer.MANIFEST,
                "echo; echo '== end'",
            )
        )


def plan(module_args: Dict[str, object], digest: str) -> Optional[Plan]:
    """The Plan for cni_plugin's arguments (as the task gives them to the action plugin),
    or None when they are not plain enough to tell here without the module's argument
    handling (then the module runs and validates them, as always)."""
    args = dict(module_args)
    args.pop("digest", None)
    if set(args) - _OPTIONS or args.get("state", "present") != "present":
        return None
    bin_dirs = args.get("bin_dir")
    if isinstance(bin_dirs, str) and "," not in bin_dirs:
        bin_dirs = [bin_dirs]
    if not isinstance(bin_dirs, list) or not bin_dirs or not all(isinstance(b, str) and _SAFE_PATH_RE.match(b) for b in bin_dirs):
        return None
    bin_dir = posixpath.normpath(bin_dirs[0])
    lib_dir = args.get("lib_dir")
    if lib_dir is not None and not (isinstance(lib_dir, str) and _SAFE_PATH_RE.match(lib_dir)):
        return None
    lib_dir = posixpath.normpath(lib_dir or installer.default_lib_dir(bin_dir))
    plugins = args.get("plugins", _DEFAULTS["plugins"])
    if not isinstance(plugins, list) or not plugins or not all(p in installer.PLUGINS for p in plugins):
        return None
    prefix = args.get("prefix", _DEFAULTS["prefix"])
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix) or prefix in (".", ".."):
        return None
    flags = {k: _bool(args.get(k, _DEFAULTS[k])) for k in ("reference_names", "agent", "force")}
    if None in flags.values():
        return None
    interpreter = args.get("interpreter", _DEFAULTS["interpreter"])
    run_dir = args.get("agent_run_dir", _DEFAULTS["agent_run_dir"])
    if not all(isinstance(p, str) and _SAFE_PATH_RE.match(p) for p in (interpreter, run_dir)):
        return None
    try:
        port = int(str(args.get("agent_port", _DEFAULTS["agent_port"])))
    except ValueError:
        return None
    if not 1 <= port <= 65535 or not re.match(r"^[0-9a-f]{64}$", digest):
        return None
    names = installer.plugin_names(sorted(set(plugins)), prefix, bool(flags["reference_names"]), bool(flags["agent"]))
    return Plan(bin_dir, lib_dir, names, digest, str(interpreter), port, posixpath.normpath(str(run_dir)), bool(flags["agent"]))


def _sections(stdout: str) -> Optional[Dict[str, List[str]]]:
    out: Dict[str, List[str]] = {}
    current: Optional[List[str]] = None
    for line in stdout.replace("\r\n", "\n").split("\n"):
        if line.startswith("== "):
            if line[3:] in out:
                return None
            current = out[line[3:]] = []
        elif current is not None:
            current.append(line)
    return out if "end" in out else None


def _sha_lines(lines: List[str], strip: str = "") -> Optional[Dict[str, str]]:
    """sha256sum's output as {path: hex}; None on any line it escaped or that does not parse."""
    out: Dict[str, str] = {}
    for line in lines:
        match = re.match(r"^([0-9a-f]{64})  (.+)$", line)
        if not match or match.group(2) in out:
            return None
        path = match.group(2)
        if strip:
            if not path.startswith(strip):
                return None
            path = path[len(strip):]
        out[path] = match.group(1)
    return out


def verdict(rc: int, stdout: str, the_plan: Plan) -> str:
    """ABSENT, CURRENT or UNKNOWN (see the module docstring) from the command's result."""
    if rc != 0:
        return UNKNOWN
    if stdout.strip() == ABSENT:
        return ABSENT
    sections = _sections(stdout)
    if sections is None or not _current(sections, the_plan):
        return UNKNOWN
    return CURRENT


def _current(s: Dict[str, List[str]], p: Plan) -> bool:
    try:
        euid = int(s["euid"][0])
    except (KeyError, IndexError, ValueError):
        return False

    def owner_ok(uid: str) -> bool:  # installer._owner_ok
        return uid.isdigit() and int(uid) in (0, euid)

    if [line for line in s.get("python", []) if line] != ["True"]:
        return False  # the module fails on an unusable interpreter: let it say so
    # the lib_dir holds this runtime and nothing else (then desired "runtimes" is [this one])
    if [line for line in s.get("lib", []) if line] != ["d " + posixpath.basename(p.rdir)]:
        return False
    # every launcher a regular 0755 file with exactly the module's text
    seen = {}
    for line in s.get("launchers", []):
        if not line:
            continue
        parts = line.split(" ", 3)
        if len(parts) != 4 or parts[3] in seen:
            return False
        seen[parts[3]] = parts[:3]
    shas = _sha_lines([line for line in s.get("launcher sha256", []) if line])
    if shas is None or set(seen) != set(p.launchers) or shas != p.launchers:
        return False
    if any(kind != "f" or mode != "755" or not owner_ok(uid) for kind, mode, uid in seen.values()):
        return False
    # the runtime: installer.runtime_problems(rdir) == [] (its rules, on the listing)
    try:
        manifest = json.loads("\n".join(s.get("manifest", [])))
    except ValueError:
        return False
    hashes = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(hashes, dict) or manifest.get("digest") != p.digest:
        return False
    other_tag = str(manifest.get("pyc_tag", ""))
    files = _sha_lines([line for line in s.get("sha256", []) if line], strip="./")
    if files is None:
        return False
    found = set()
    for line in s.get("tree", []):
        if not line:
            continue
        parts = line.split(" ", 3)
        if len(parts) != 4:
            return False
        kind, mode, uid, rel = parts
        if kind == "d":
            if mode != "755" or not owner_ok(uid):
                return False
            continue
        if rel == installer.MANIFEST:
            if kind != "f":
                return False
            continue
        if rel not in hashes:
            name = posixpath.basename(rel)
            if name.endswith(".pyc") and posixpath.basename(posixpath.dirname(rel)) == "__pycache__" and other_tag and ("." + other_tag + ".") not in name:
                continue  # another interpreter's own bytecode: not ours, harmless (as runtime_problems)
            return False
        if rel in found or kind != "f" or mode != "644" or not owner_ok(uid) or files.get(rel) != hashes[rel]:
            return False
        found.add(rel)
    return found == set(hashes)
