# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exec'ing one plugin the way libcni does, and recording it for the trace.

libcni's CNIConfig holds the plugin search path and an `invoke.Exec`; this
is that pair. The exec itself is `invoke.exec_plugin`, the one path the
plugins' IPAM delegation takes too: every exec yields a record -- also when
the binary cannot be exec'd or times out -- because the record is what the
operator sees in cni_attach. An optional argv prefix (`ip netns exec NODE`,
`nsenter ...`) runs the plugin in another context; the normal case on a
node has none.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional, Sequence, Tuple

from ..invoke import ExecRecord, exec_plugin, find_plugin

DEFAULT_TIMEOUT = 60.0


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

    def run(self, path: str, env: Mapping[str, str], stdin: bytes) -> ExecRecord:
        """Run a plugin once. Never raises: failures are in the record's `cni_error`."""
        return exec_plugin(path, env, stdin, self.timeout, self.exec_prefix)
