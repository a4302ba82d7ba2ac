# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The executable entry of every plugin (the Go library's pkg/skel).

`run(name, env, stdin)` serves one call, its env and stdin given as
arguments, and returns the exit code and what a process would print: it
never prints and never exits, so a resident agent can serve the same call
without a new process. (It is not pure: the plugin it runs changes the
network.) `main()` is the launcher's thin wrapper around it.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from . import __version__, invoke
from .config.decode import decode_json, lookup
from .config.netconf import call_memo, call_scope, validate_name
from .names import ifname_problem, valid_name
from .spec import (
    ERR_INCOMPATIBLE_VERSION,
    ERR_INTERNAL,
    ERR_INVALID_ENV,
    ERR_IO,
    SUPPORTED_VERSIONS,
    CNIError,
    Result,
    dumps,
    version_ge,
    version_info,
)

# canonical plugin name -> module in .plugins (imported lazily: only the one exec'd)
PLUGIN_MODULES: Dict[str, str] = {
    "bridge": "bridge",
    "host-local": "host_local",
    "loopback": "loopback",
    "portmap": "portmap",
}

COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
# (command) -> the env vars it requires, from the Go skel's table
_REQUIRED_ENV = {
    "ADD": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_COMMAND", "CNI_PATH"),
    "STATUS": ("CNI_COMMAND", "CNI_PATH"),
    "VERSION": ("CNI_COMMAND",),
}
# minimum config version for the verbs that came later than ADD/DEL
_MIN_VERSION = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}


@dataclass
class CmdArgs:
    """What a plugin function receives: validated env plus the parsed stdin."""

    command: str
    container_id: str
    netns: str
    ifname: str
    args: str
    path: List[str]
    stdin: bytes
    env: Dict[str, str]
    netconf: Dict[str, object] = field(default_factory=dict)
    # lines for stderr besides the result or error: e.g. an undo step of a
    # failed ADD that failed too (the runtime sees the original error)
    diagnostics: List[str] = field(default_factory=list)

    @property
    def cni_version(self) -> str:
        version = lookup(self.netconf, "cniVersion")  # Go's key rule, as its version decoder
        return version if isinstance(version, str) else ""


PluginFunc = Callable[[CmdArgs], Optional[Result]]


@dataclass
class Plugin:
    """A plugin's verbs. A missing GC/STATUS means "nothing to do" (exit 0)."""

    name: str
    add: PluginFunc
    delete: PluginFunc
    check: PluginFunc
    gc: Optional[PluginFunc] = None
    status: Optional[PluginFunc] = None
    supported_versions: Tuple[str, ...] = SUPPORTED_VERSIONS
    # Whether the plugin acts inside CNI_NETNS. One that never enters it
    # (host-local, portmap) accepts the caller's own netns, as Go's do.
    enters_netns: bool = True
    # Imports now what its calls import on first use (pyroute2's message
    # classes, netaddr's address types): a resident agent calls it once at
    # start, so that no call pays for them. None: nothing to import.
    warm: Optional[Callable[[], None]] = None

    def about(self) -> str:
        return "CNI %s plugin (nodenet.cni) v%s\nCNI protocol versions supported: %s\n" % (
            self.name,
            __version__,
            ", ".join(self.supported_versions),
        )


def load_plugin(name: str) -> Plugin:
    module = PLUGIN_MODULES.get(name)
    if module is None:
        raise CNIError(ERR_INTERNAL, "unknown plugin %r" % name)
    return importlib.import_module(".plugin." + module, __package__).PLUGIN


def run(name: str, env: Mapping[str, str], stdin: bytes) -> Tuple[int, str, str]:
    """Serve one CNI call. Returns (exit code, stdout, stderr); never raises.

    A top-level call opens the memo its in-process delegates share
    (config.netconf.call_memo: stdin parsed once per call).
    """
    with call_scope():
        return _run(name, env, stdin)


def _decode_stdin(stdin: bytes) -> Dict[str, object]:
    """decode_json(stdin), once per call for the same bytes (a delegate gets its caller's bytes)."""
    memo = call_memo()
    if memo is None or not isinstance(stdin, bytes):
        return decode_json(stdin)
    key = ("stdin", stdin)
    raw = memo.get(key)
    if raw is None:
        raw = memo[key] = decode_json(stdin)
    return raw


def _run(name: str, env: Mapping[str, str], stdin: bytes) -> Tuple[int, str, str]:
    version = ""
    cmd: Optional[CmdArgs] = None
    try:
        plugin = load_plugin(name)
        command = env.get("CNI_COMMAND", "")
        if not command:
            return 0, "", plugin.about()
        cmd = _validate_env(command, env, plugin.enters_netns)
        if command == "VERSION":
            return 0, _version_reply(plugin, stdin) + "\n", ""
        cmd.stdin = stdin  # delegated IPAM gets the identical bytes (pkg/invoke)
        cmd.netconf = _decode_stdin(stdin)
        validate_name(lookup(cmd.netconf, "name"))
        version = cmd.cni_version
        _check_version(plugin, command, version)
        func = {"ADD": plugin.add, "DEL": plugin.delete, "CHECK": plugin.check, "GC": plugin.gc, "STATUS": plugin.status}[command]
        if func is None:
            return 0, "", ""
        result = func(cmd)
        if command == "ADD":
            if result is None:
                raise CNIError(ERR_INTERNAL, "plugin %s returned no result for ADD" % name)
            return 0, dumps(result.to_dict(version or "0.1.0")), _diagnostics(cmd)
        return 0, "", _diagnostics(cmd)
    except CNIError as e:
        return 1, dumps(e.to_dict(version)), _diagnostics(cmd)
    except Exception as e:  # a bug, but the runtime still needs a spec error
        import traceback

        err = CNIError(ERR_INTERNAL, "%s: %s" % (type(e).__name__, e))
        return 1, dumps(err.to_dict(version)), _diagnostics(cmd) + traceback.format_exc()


def _run_if_ours(path: str, env: Mapping[str, str], stdin: bytes) -> Optional[Tuple[int, str, str]]:
    """A delegate that is our own shim on this runtime runs here (invoke.in_process_runner)."""
    from .agent.shim import own_runtime_dir

    header = _shim_header(path)
    if header is None or not header["canonical"] or header["rdir"] != own_runtime_dir():
        return None
    return run(header["canonical"], env, stdin)


# A shim's header, kept while the file is the one it was read from (device,
# inode, size, mtime): an agent delegates to the same host-local on every ADD.
_HEADERS: Dict[str, Tuple[Tuple[int, int, int, int], Optional[Dict[str, str]]]] = {}
_HEADERS_MAX = 64


def _shim_header(path: str) -> Optional[Dict[str, str]]:
    from .agent.shim import read_header

    try:
        st = os.stat(path)
    except OSError:
        return None
    ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    kept = _HEADERS.get(path)
    if kept is not None and kept[0] == ident:
        return kept[1]
    header = read_header(path)  # replaced after the stat: kept under the old identity, so read again next time
    if len(_HEADERS) >= _HEADERS_MAX:
        _HEADERS.clear()
    _HEADERS[path] = (ident, header)
    return header


invoke.in_process_runner = _run_if_ours


def _diagnostics(cmd: Optional[CmdArgs]) -> str:
    return "".join(line.rstrip("\n") + "\n" for line in cmd.diagnostics) if cmd is not None else ""


def _validate_env(command: str, env: Mapping[str, str], enters_netns: bool = True) -> CmdArgs:
    if command not in COMMANDS:
        raise CNIError(ERR_INVALID_ENV, "unknown CNI_COMMAND: %s" % command)
    missing = [var for var in _REQUIRED_ENV[command] if not env.get(var)]
    if missing:
        raise CNIError(ERR_INVALID_ENV, "required env variables [%s] missing" % ",".join(missing))
    cmd = CmdArgs(
        command=command,
        container_id=env.get("CNI_CONTAINERID", ""),
        netns=env.get("CNI_NETNS", ""),
        ifname=env.get("CNI_IFNAME", ""),
        args=env.get("CNI_ARGS", ""),
        path=[p for p in env.get("CNI_PATH", "").split(os.pathsep) if p],
        stdin=b"",
        env=dict(env),
    )
    if command in ("ADD", "CHECK", "DEL"):
        if not valid_name(cmd.container_id):  # Go's pkg/utils rule, as for network names
            raise CNIError(ERR_INVALID_ENV, "invalid characters in CNI_CONTAINERID", cmd.container_id)
        _validate_ifname(cmd.ifname)
        if cmd.netns and enters_netns:
            _check_foreign_netns(cmd.netns, env)
    return cmd


def _validate_ifname(name: str) -> None:
    # Kernel rules for an interface name (pkg/utils ValidateInterfaceName), in bytes.
    problem = ifname_problem(name)
    if problem is not None:
        raise CNIError(ERR_INVALID_ENV, "CNI_IFNAME %r %s" % (name, problem), name)


def _check_foreign_netns(netns: str, env: Mapping[str, str]) -> None:
    """CNI_NETNS must not be the plugin's own netns (Go: code 8 after the fact).

    We check before doing anything and report it as an invalid env var (4),
    because code 8 is not in the spec. Unopenable paths are left to the plugin.
    """
    if env.get("CNI_NETNS_OVERRIDE", "").lower() in ("1", "true"):
        return
    try:
        theirs = os.stat(netns)
        ours = os.stat("/proc/thread-self/ns/net")  # an agent worker's own, not its main thread's
    except OSError:
        return
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
        raise CNIError(ERR_INVALID_ENV, "CNI_NETNS %s is the plugin's own network namespace" % netns)


def _check_version(plugin: Plugin, command: str, version: str) -> None:
    shown = version or "0.1.0"  # an empty cniVersion means 0.1.0 (Go's create.go)
    if shown not in plugin.supported_versions:
        raise CNIError(
            ERR_INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            'config is "%s", plugin supports %s' % (shown, list(plugin.supported_versions)),
        )
    minimum = _MIN_VERSION.get(command)
    if minimum and not version_ge(shown, minimum):
        raise CNIError(ERR_INCOMPATIBLE_VERSION, "config version %s does not allow %s (needs %s or later)" % (shown, command, minimum))


def _version_reply(plugin: Plugin, stdin: bytes) -> str:
    # The spec says echo the request's version; Go always answers its own.
    # We echo when we support it, so a caller learns it was understood.
    import json

    asked = ""
    try:
        obj = json.loads(stdin) if stdin.strip() else {}
        asked = lookup(obj, "cniVersion") if isinstance(obj, dict) else ""
    except ValueError:
        pass
    reply = version_info(asked if asked in plugin.supported_versions else plugin.supported_versions[-1], plugin.supported_versions)
    return json.dumps(reply, separators=(",", ":"))


def read_stdin(stream) -> bytes:
    try:
        return stream.read()
    except OSError as e:
        raise CNIError(ERR_IO, "error reading from stdin: %s" % e)


def main(name: str) -> int:
    """Launcher entry: read stdin, run, print; returns the exit code (the launcher exits)."""
    command = os.environ.get("CNI_COMMAND", "")
    stdin = b""
    if command:
        try:
            stdin = read_stdin(sys.stdin.buffer)
        except CNIError as e:
            sys.stdout.write(dumps(e.to_dict()))
            return 1
    code, out, err = run(name, os.environ, stdin)
    if err:
        sys.stderr.write(err)
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    return code
