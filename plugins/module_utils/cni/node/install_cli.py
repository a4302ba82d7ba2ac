# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_plugin's work, for the module and for an install without a module run.

`install()` is what nodenet.cni.cni_plugin does once its options are parsed:
the installed state (launchers, runtime dirs) observed, compared with the
desired one and, unless in check mode, changed. The module
(plugins/modules/cni_plugin.py) is a thin wrapper around it.

A node that needs the bundle (a first converge, a new version, a damaged
runtime) gets it without a module run: the action plugin
(plugins/action/cni_plugin.py) checks the task's options on the controller
with ARGUMENT_SPEC and runs one `python3 -B -I -S` on the node, whose stdin
carries module_utils/install_boot.py, the request and the bundle. The boot
code reads the bundle from stdin (no file transfer, no remote tmp dir),
imports this file and the installer from the bundle itself (the controller's
pycs where they suit the node's Python) and calls `main_boot`. No AnsiballZ
payload, no module floor on the node (a Python start with site, unzipping,
ansible.module_utils.basic).

The request (one JSON line, then the bundle's bytes): {"protocol": PROTOCOL,
"params": the module's validated options, with digest, "diff": bool}. The
answer on stdout: {"result": the module's result (on failure with "failed"
and the module's "msg")}. PROTOCOL changes whenever the request or the
answer does.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Dict, List, Optional, TextIO, Tuple

from . import installer

PROTOCOL = 1
PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+$")
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9_./+-]*$")
# the module's options (src and digest are set by its action plugin)
ARGUMENT_SPEC: Dict[str, Any] = dict(
    bin_dir=dict(type="list", elements="path", required=True),
    lib_dir=dict(type="path"),
    plugins=dict(type="list", elements="str", choices=list(installer.PLUGINS), default=list(installer.PLUGINS)),
    prefix=dict(type="str", default=installer.DEFAULT_PREFIX),
    reference_names=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    interpreter=dict(type="path", default="/usr/bin/python3"),
    agent=dict(type="bool", default=True),
    agent_port=dict(type="int", default=installer.DEFAULT_PORT),
    agent_run_dir=dict(type="path", default=installer.DEFAULT_RUN_DIR),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    src=dict(type="path"),
    digest=dict(type="str", no_log=False),
)
Bundle = Tuple[str, Dict[str, bytes], Dict[str, object]]  # installer.read_bundle()'s (digest, sources, pycs)


def check_args(p: Dict[str, Any]) -> Optional[str]:
    """Value checks argument_spec cannot declare: the message, naming its option, or None."""
    if not p["bin_dir"]:
        return "bin_dir must name at least one directory"
    for path in p["bin_dir"]:
        if not os.path.isabs(path):
            return "bin_dir must be absolute paths, got %r" % path
    if os.path.exists(p["bin_dir"][0]) and not os.path.isdir(p["bin_dir"][0]):
        return "bin_dir %s exists and is not a directory" % p["bin_dir"][0]
    if p["lib_dir"] is not None and not os.path.isabs(p["lib_dir"]):
        return "lib_dir must be an absolute path, got %r" % p["lib_dir"]
    if not PREFIX_RE.match(p["prefix"]) or p["prefix"] in (".", ".."):
        return (
            "prefix must be non-empty and contain only letters, digits, '.', '_' and '-', got %r"
            " (to install under the plain plugin names use reference_names=true)" % p["prefix"]
        )
    if not p["plugins"]:
        return "plugins must name at least one plugin"
    if not 1 <= p["agent_port"] <= 65535:
        return "agent_port must be a TCP port (1-65535), got %d" % p["agent_port"]
    for option in ("agent_run_dir", "interpreter", "bin_dir", "lib_dir"):
        # baked into the bash shims: absolute, and nothing a shell would interpret
        values = p[option] if isinstance(p[option], list) else [p[option]]
        for value in values:
            if value is not None and not SAFE_PATH_RE.match(value):
                return "%s must be an absolute path of letters, digits and '_./+-', got %r" % (option, value)
    if p["state"] == "present" and not p["digest"]:
        return (
            "digest (and src) are set by the nodenet.cni.cni_plugin action plugin; run the module"
            " through Ansible (ansible -m nodenet.cni.cni_plugin) rather than on its own"
        )
    return None


def conflict_message(conflicts: List[str], names: Dict[str, str], bin_dir: str, prefix: str) -> str:
    what = ", ".join(os.path.join(bin_dir, n) for n in conflicts)
    if any(n == names[n] for n in conflicts):
        return (
            "reference_names=true would overwrite %s, not installed by nodenet.cni (a Go plugin?);"
            " set force=true to replace them, or leave reference_names false to use only the %r-prefixed names" % (what, prefix)
        )
    return "prefix %r: %s already exist and were not installed by nodenet.cni; choose another prefix or set force=true" % (prefix, what)


class _Failed(Exception):
    def __init__(self, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


def install(p: Dict[str, Any], check_mode: bool, diff: bool, bundle: Optional[Bundle] = None) -> Dict[str, Any]:
    """The module's result for its params `p`; on failure the result of its fail_json ("failed",
    "msg" and what it knew by then). `bundle`: the bundle already read (the boot path), else
    the module reads `src` when it is set."""
    result: Dict[str, Any] = {}
    try:
        problem = check_args(p)
        if problem:
            raise _Failed(problem)
        _install(p, check_mode, diff, bundle, result)
    except _Failed as e:
        return dict(result, failed=True, msg=e.msg, **e.extra)
    return result


def _install(p: Dict[str, Any], check_mode: bool, diff: bool, bundle: Optional[Bundle], result: Dict[str, Any]) -> None:
    bin_dir = os.path.normpath(p["bin_dir"][0])  # install into CNI_PATH's first directory
    lib_dir = os.path.normpath(p["lib_dir"] or installer.default_lib_dir(bin_dir))
    names = installer.plugin_names(sorted(set(p["plugins"])), p["prefix"], p["reference_names"], p["agent"])
    agent_conf = dict(port=p["agent_port"], run_dir=os.path.normpath(p["agent_run_dir"]))
    before = installer.current_state(bin_dir, lib_dir, names)
    result.update(changed=False, lib_dir=lib_dir)

    if p["state"] == "absent":
        desired = installer.absent_state(bin_dir, lib_dir, names)
        result["removed"] = sorted(os.path.join(bin_dir, n) for n in names if installer.is_managed(os.path.join(bin_dir, n)))
        if before != desired and not check_mode:
            try:
                installer.remove_state(bin_dir, lib_dir, names)
            except OSError as e:
                raise _Failed("removing the plugins from bin_dir %s failed: %s" % (bin_dir, e))
    else:
        try:
            interpreter = installer.interpreter_info(p["interpreter"])
        except ValueError as e:
            raise _Failed("interpreter: %s" % e)
        digest, files, pycs = p["digest"], None, {}
        if bundle is None and p["src"]:
            try:
                bundle = installer.read_bundle(p["src"])
            except (OSError, ValueError) as e:
                raise _Failed("src: cannot read the plugin bundle: %s" % e)
        if bundle is not None:
            digest, files, pycs = bundle
            if digest != p["digest"]:
                raise _Failed("digest: the bundle in src has digest %s, expected %s (corrupted in transfer?)" % (digest, p["digest"]))
        blocking = installer.blocking_conflicts(bin_dir, names)
        if blocking:
            raise _Failed("bin_dir: directories sit where launchers go, even force cannot replace them: %s" % ", ".join(blocking))
        conflicts = installer.conflicts(bin_dir, names)
        if conflicts and not p["force"]:
            raise _Failed(conflict_message(conflicts, names, bin_dir, p["prefix"]), conflicts=[os.path.join(bin_dir, n) for n in conflicts])
        desired = installer.desired_state(bin_dir, lib_dir, names, digest, p["interpreter"], **agent_conf)
        result.update(
            digest=digest,
            runtime_dir=installer.runtime_dir_for(lib_dir, digest),
            plugins={n: dict(plugin=c, path=os.path.join(bin_dir, n)) for n, c in sorted(names.items()) if c != installer.AGENT},
        )
        if p["agent"]:
            result["agent"] = os.path.join(bin_dir, p["prefix"] + "agent")
        if before != desired and not check_mode and files is None:
            # up to date is decided without the bundle; only now is it worth transferring
            result["bundle_needed"] = True
            return
        if before != desired and not check_mode:
            try:
                usable = installer.usable_pycs(pycs, interpreter)
                compiled = installer.apply_state(bin_dir, lib_dir, names, digest, files, p["interpreter"], pycs=usable, **agent_conf)
                if compiled:
                    result["bytecode"] = compiled
            except (OSError, RuntimeError) as e:
                raise _Failed("installing the plugins into bin_dir %s failed: %s" % (bin_dir, e))

    after = desired if check_mode else installer.current_state(bin_dir, lib_dir, names)
    result["changed"] = before != after
    if not check_mode and after != desired:
        raise _Failed("bin_dir %s did not reach the requested state (a concurrent change?)" % bin_dir)
    if diff:
        result["diff"] = dict(
            before=installer.describe_state(before, bin_dir, lib_dir),
            after=installer.describe_state(after, bin_dir, lib_dir),
            before_header="%s (before)" % bin_dir,
            after_header="%s (after)" % bin_dir,
        )


class RequestError(Exception):
    """A request this entry point does not take (the action plugin's bug, not the user's)."""


def parse_request(raw: Any) -> Tuple[Dict[str, Any], bool]:
    if not isinstance(raw, dict) or raw.get("protocol") != PROTOCOL:
        raise RequestError("not a cni_plugin request of protocol %d" % PROTOCOL)
    params, diff = raw.get("params"), raw.get("diff")
    if not isinstance(params, dict) or not isinstance(diff, bool):
        raise RequestError("the request needs params (an object) and diff (a boolean)")
    missing = sorted(set(ARGUMENT_SPEC) - set(params))
    if missing or params.get("state") != "present" or not params.get("digest"):
        raise RequestError("params: the module's validated options for state=present, with digest (missing: %s)" % ", ".join(missing))
    return params, diff


def main_boot(request: Any, members: List[Tuple[str, Optional[bytes]]], stdout: Optional[TextIO] = None) -> int:
    """One install from the bundle install_boot read (its members: name and bytes, None for
    anything but a regular file), in this process, which then exits (the caller's
    SystemExit): 0 with the answer on stdout (a failed install is in it), 2 for a request
    this entry point does not take."""
    stdout = stdout or sys.stdout
    try:
        params, diff = parse_request(request)
    except RequestError as e:
        json.dump({"result": {"failed": True, "msg": "cni_plugin: %s" % e}}, stdout)
        stdout.write("\n")
        return 2
    try:
        bundle: Optional[Bundle] = installer.parse_bundle(members, "on stdin")
    except ValueError as e:
        result = {"failed": True, "msg": "src: cannot read the plugin bundle: %s" % e, "changed": False}
    else:
        result = install(params, False, diff, bundle)
    json.dump({"result": result}, stdout, sort_keys=True)
    stdout.write("\n")
    return 0
