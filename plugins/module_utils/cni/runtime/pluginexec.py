# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exec'ing one plugin the way libcni does, and recording it for the trace.

libcni's CNIConfig holds the plugin search path and an `invoke.Exec`; this
is that pair. Unlike `invoke.exec_plugin` (the plugins' delegation path),
every exec here yields a record -- also when the binary cannot be exec'd or
times out -- because the record is what the operator sees in cni_attach.
An optional argv prefix (`ip netns exec NODE`, `nsenter ...`) runs the
plugin in another context; the normal case on a node has none.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..invoke import ExecRecord, error_from_record, find_plugin, run_group
from ..spec import ERR_INTERNAL, CNIError

DEFAULT_TIMEOUT = 60.0
# libcni RawExec: retry while the binary is being written ("text file busy")
_BUSY_RETRIES = 5


@dataclass
class TraceRecord(ExecRecord):
    """An ExecRecord plus the full argv (with any prefix) and the decoded error."""

    argv: List[str] = field(default_factory=list)
    error: str = ""  # "" when the plugin succeeded
    cni_error: Optional[CNIError] = field(default=None, repr=False, compare=False)

    def as_dict(self) -> Dict[str, object]:
        out = super().as_dict()
        out["argv"] = list(self.argv)
        out["error"] = self.error
        return out


def go_error_text(err: CNIError) -> str:
    """A plugin error as Go's types.Error.Error() prints it: msg, then "; details"."""
    return err.msg + ("; " + err.details if err.details else "")


def decode_failure(rec: ExecRecord) -> CNIError:
    """The error of a failed exec (pkg/invoke/raw_exec.go pluginErr)."""
    if rec.stdout.strip():
        return error_from_record(rec)
    status = "exit status %d" % rec.exit_code
    if rec.stderr.strip():
        # Go quotes stderr with %q; a JSON string is the same for printable text
        return CNIError(ERR_INTERNAL, "netplugin failed: %s: %s" % (json.dumps(rec.stderr), status))
    return CNIError(ERR_INTERNAL, "netplugin failed with no error message: %s" % status)


class PluginExec:
    """Where plugins are looked up and how they are run."""

    def __init__(
        self,
        cni_path: Sequence[str],
        env: Optional[Mapping[str, str]] = None,
        exec_prefix: Sequence[str] = (),
        timeout: Optional[float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.cni_path: Tuple[str, ...] = tuple(cni_path)
        # None: the caller's environment at exec time, as libcni (os.Environ()).
        self.env = dict(env) if env is not None else None
        self.exec_prefix: Tuple[str, ...] = tuple(exec_prefix)
        self.timeout = timeout

    def find(self, plugin_type: str) -> str:
        """First regular file named plugin_type in cni_path (pkg/invoke/find.go)."""
        return find_plugin(plugin_type, list(self.cni_path))

    def environment(
        self,
        command: str,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        cni_args: str = "",
        cni_path: Optional[str] = None,
    ) -> Dict[str, str]:
        """The caller's env plus the six CNI_* vars (pkg/invoke/args.go AsEnv).

        All six are always set, empty when not applicable (GC, STATUS), and
        override same-named variables of the caller's env.
        """
        env = dict(os.environ if self.env is None else self.env)
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=container_id,
            CNI_NETNS=netns,
            CNI_ARGS=cni_args,
            CNI_IFNAME=ifname,
            CNI_PATH=os.pathsep.join(self.cni_path) if cni_path is None else cni_path,
        )
        return env

    def run(self, path: str, env: Mapping[str, str], stdin: bytes) -> TraceRecord:
        """Run a plugin once. Never raises: failures are in the record's `error`."""
        argv = list(self.exec_prefix) + [path]
        start = time.monotonic()
        stdout, stderr, code, error = b"", b"", -1, None
        for attempt in range(_BUSY_RETRIES + 1):
            try:
                # own process group, killed whole on timeout (the plugin's delegates too)
                proc = run_group(argv, stdin, env, self.timeout)
                stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
                break
            except OSError as e:
                if e.errno == errno.ETXTBSY and attempt < _BUSY_RETRIES:
                    time.sleep(1)
                    continue
                error = CNIError(ERR_INTERNAL, "netplugin failed with no error message: fork/exec %s: %s" % (argv[0], e.strerror))
                break
            except subprocess.TimeoutExpired as e:
                # run_group killed its process group and collected what it had printed
                stdout, stderr, code = e.stdout or b"", e.stderr or b"", -9
                error = CNIError(ERR_INTERNAL, "plugin %s killed (with its process group) after %ss timeout" % (path, self.timeout))
                break
        rec = TraceRecord(
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
        if error is None and code != 0:
            error = decode_failure(rec)
        if error is not None:
            rec.error = go_error_text(error)
            rec.cni_error = error
        return rec
