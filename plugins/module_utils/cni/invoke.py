# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exec'ing a CNI plugin: lookup in CNI_PATH, env, stdin, error decoding.

Part of the spec layer (stdlib only). The one exec path (pkg/invoke
RawExec): plugins that delegate to an IPAM plugin (pkg/invoke/delegate.go)
and the runtime half (libcni, runtime/pluginexec.py) both run `exec_plugin`.
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .config.result import parse_result
from .spec import ERR_INTERNAL, ERR_INVALID_NETCONF, CNIError, Result

if TYPE_CHECKING:  # imported where a plugin is exec'd: an in-process call never needs it
    import subprocess


@dataclass
class ExecRecord:
    """One plugin exec, as cni_attach traces it: the full argv (with any
    prefix), what went in and out, and the decoded error (None: success)."""

    path: str
    command: str
    env: Dict[str, str]
    stdin: str
    stdout: str
    stderr: str
    exit_code: int
    duration_ms: float
    argv: List[str] = field(default_factory=list)
    cni_error: Optional[CNIError] = field(default=None, repr=False, compare=False)

    @property
    def error(self) -> str:
        """The failure as Go prints it; "" when the plugin succeeded."""
        return go_error_text(self.cni_error) if self.cni_error is not None else ""

    def as_dict(self) -> Dict[str, object]:
        return {
            "path": self.path,
            "command": self.command,
            "env": self.env,
            "stdin": self.stdin,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "duration_ms": round(self.duration_ms, 3),
            "argv": list(self.argv),
            "error": self.error,
        }


def go_error_text(err: CNIError) -> str:
    """A plugin error as Go's types.Error.Error() prints it: msg, then "; details"."""
    return err.msg + ("; " + err.details if err.details else "")


def split_path(value: str) -> List[str]:
    return [p for p in value.split(os.pathsep) if p]


def find_plugin(plugin_type: str, paths: Sequence[str]) -> str:
    """First regular file named plugin_type across paths (pkg/invoke/find.go)."""
    if not plugin_type:
        raise CNIError(ERR_INVALID_NETCONF, "no plugin name provided")
    if os.sep in plugin_type:
        raise CNIError(ERR_INVALID_NETCONF, "invalid plugin name %r: must not contain %s" % (plugin_type, os.sep))
    if not paths:
        raise CNIError(ERR_INVALID_NETCONF, "no paths provided to look up plugin %r" % plugin_type)
    for directory in paths:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate):
            return candidate
    raise CNIError(ERR_INTERNAL, "failed to find plugin %r in path %s" % (plugin_type, json.dumps(list(paths))))


# A delegated plugin (IPAM) must not hang a pod's ADD forever.
DELEGATE_TIMEOUT = 120.0


def run_group(argv: Sequence[str], stdin: bytes, env: Optional[Mapping[str, str]], timeout: Optional[float], **popen: object) -> subprocess.CompletedProcess:
    """subprocess.run for a plugin: the child leads its own process group, and
    a timeout (or any interruption) kills the whole group, not just the child.

    A bridge that times out while its host-local runs must not leave that
    host-local behind holding the store lock or a half-written lease.
    Raises subprocess.TimeoutExpired (with what was printed) like run().
    """
    import subprocess

    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        start_new_session=True,
        **popen,  # type: ignore[arg-type]
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = _drain(proc)
        raise subprocess.TimeoutExpired(list(argv), timeout or 0, output=out, stderr=err)
    except BaseException:
        kill_group(proc)
        _drain(proc)
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group `proc` leads (start_new_session: pgid == pid)."""
    import signal  # with subprocess: only where a plugin is exec'd

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except OSError:
        pass


def _drain(proc: subprocess.Popen) -> Tuple[bytes, bytes]:
    # a process outside the group (it called setsid itself) may still hold the
    # pipes: bounded, then give up on the rest of the output
    import subprocess

    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait(timeout=5)
        out, err = b"", b""
    return out or b"", err or b""


# libcni RawExec.ExecPlugin: 6 tries, 1 s apart, while the binary is being
# written ("text file busy").
EXEC_TRIES = 6


def exec_plugin(
    path: str,
    env: Mapping[str, str],
    stdin: bytes,
    timeout: Optional[float] = DELEGATE_TIMEOUT,
    prefix: Sequence[str] = (),
) -> ExecRecord:
    """Run a plugin once (argv: `prefix` + path, in its own process group).

    Never raises for a failure: a plugin that cannot be exec'd, times out or
    exits non-zero yields a record whose `cni_error` says why, because the
    record is what the operator sees in cni_attach's trace.
    """
    argv = list(prefix) + [path]
    start = time.monotonic()
    stdout, stderr, code, error = _run_retrying(argv, stdin, env, timeout)
    rec = ExecRecord(
        path=path,
        command=env.get("CNI_COMMAND", ""),
        # only the CNI_* part: the rest is the caller's own env, may hold
        # secrets, and is the same for every exec
        env={k: v for k, v in env.items() if k.startswith("CNI_")},
        stdin=stdin.decode("utf-8", "replace"),
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        exit_code=code,
        duration_ms=(time.monotonic() - start) * 1000.0,
        argv=argv,
    )
    rec.cni_error = decode_failure(rec) if error is None and code != 0 else error
    return rec


def _run_retrying(argv: List[str], stdin: bytes, env: Mapping[str, str], timeout: Optional[float]) -> Tuple[bytes, bytes, int, Optional[CNIError]]:
    """(stdout, stderr, exit code, the error of a plugin that did not run to its end)."""
    import subprocess

    for attempt in range(EXEC_TRIES):
        try:
            proc = run_group(argv, stdin, env, timeout)
            return proc.stdout, proc.stderr, proc.returncode, None
        except OSError as e:
            if e.errno == errno.ETXTBSY and attempt < EXEC_TRIES - 1:
                time.sleep(1)
                continue
            return b"", b"", -1, CNIError(ERR_INTERNAL, "netplugin failed with no error message: fork/exec %s: %s" % (argv[0], e.strerror))
        except subprocess.TimeoutExpired as e:
            # run_group killed its process group and collected what it had printed
            killed = CNIError(ERR_INTERNAL, "plugin %s killed (with its process group) after %ss timeout" % (argv[-1], timeout))
            return e.stdout or b"", e.stderr or b"", -9, killed
    raise AssertionError("unreachable: the last try returns")


def decode_failure(rec: ExecRecord) -> CNIError:
    """The error of a plugin that exited non-zero (pkg/invoke/raw_exec.go pluginErr)."""
    out = rec.stdout.strip()
    if out:
        try:
            obj = json.loads(out)
            code = int(obj.get("code", ERR_INTERNAL))
            return CNIError(code, str(obj.get("msg", "")), str(obj.get("details", "") or ""))
        except (ValueError, AttributeError, TypeError):
            return CNIError(ERR_INTERNAL, "netplugin failed but error parsing its diagnostic message %s" % json.dumps(out))
    status = "exit status %d" % rec.exit_code
    if rec.stderr.strip():
        # Go quotes stderr with %q; a JSON string is the same for printable text
        return CNIError(ERR_INTERNAL, "netplugin failed: %s: %s" % (json.dumps(rec.stderr), status))
    return CNIError(ERR_INTERNAL, "netplugin failed with no error message: %s" % status)


# Delegation depth travels in the env (a runtime never sets it): bridge ->
# host-local is 1; an ipam.type that leads back to a delegating plugin under
# another name is stopped here instead of forking without bound.
DEPTH_ENV = "NODENET_CNI_DELEGATION_DEPTH"
MAX_DELEGATION_DEPTH = 4


def _delegation_depth(env: Mapping[str, str]) -> int:
    try:
        return max(0, int(env.get(DEPTH_ENV, "0")))
    except ValueError:
        return MAX_DELEGATION_DEPTH  # tampered with: delegate no further


def _own_type(stdin: bytes) -> str:
    try:
        obj = json.loads(stdin)
    except (ValueError, UnicodeDecodeError):
        return ""
    value = obj.get("type") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


# Set by skel: runs a delegate in this process when `path` is one of our own
# shims on this very runtime (the same code an exec would run, minus ~2 ms of
# exec in the agent, ~200 ms in the fallback). Returns None for anything else.
InProcessRunner = Callable[[str, Mapping[str, str], bytes], Optional[Tuple[int, str, str]]]
in_process_runner: Optional[InProcessRunner] = None


def delegate(command: str, plugin_type: str, stdin: bytes, env: Mapping[str, str]) -> Optional[Result]:
    """Run a delegated plugin (IPAM) with the caller's env, CNI_COMMAND overridden.

    Returns the parsed result for ADD, None otherwise. Raises the delegate's
    own CNIError on failure, so its code and message reach the runtime.
    """
    depth = _delegation_depth(env)
    if _own_type(stdin) == plugin_type:
        raise CNIError(ERR_INVALID_NETCONF, "field 'ipam.type': %r names the plugin itself; it would delegate to itself without end" % plugin_type)
    if depth >= MAX_DELEGATION_DEPTH:
        raise CNIError(
            ERR_INVALID_NETCONF,
            "field 'ipam.type': delegation to %r is %d plugins deep (at most %d); does ipam.type lead back to the plugin?"
            % (plugin_type, depth + 1, MAX_DELEGATION_DEPTH),
        )
    path = find_plugin(plugin_type, split_path(env.get("CNI_PATH", "")))
    child_env = dict(env)
    child_env["CNI_COMMAND"] = command
    child_env[DEPTH_ENV] = str(depth + 1)
    served = in_process_runner(path, child_env, stdin) if in_process_runner is not None else None
    if served is not None:
        code, out, err = served
        rec = ExecRecord(path, command, {}, "", out, err, code, 0.0, [path])
        rec.cni_error = decode_failure(rec) if code != 0 else None
    else:
        rec = exec_plugin(path, child_env, stdin, DELEGATE_TIMEOUT)
    if rec.cni_error is not None:
        raise rec.cni_error
    if command != "ADD":
        return None
    try:
        obj = json.loads(rec.stdout)
    except ValueError as e:
        raise CNIError(ERR_INTERNAL, "failed to decode result of %s: %s" % (plugin_type, e))
    return parse_result(obj, "%s result" % plugin_type)
