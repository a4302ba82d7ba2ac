# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shim's protocol from Python: the agent's counters for cni_facts, and tests.

Acts in the calling thread's network namespace, like the shim: 127.0.0.1
there is that namespace's agent or nobody.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Dict, Mapping, Optional, Tuple

from . import DEFAULT_PORT, DEFAULT_RUN_DIR, GREETING, STATS, STATUS_NOT_SERVING, STATUS_OTHER_RUNTIME, token_path

_KEY_RE = re.compile(r"\A[0-9]+-[0-9]+\Z")


class AgentUnreachable(Exception):
    """No agent answered the greeting: nothing was sent (a shim runs the plugin itself)."""


def _recv_line(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def call(
    plugin: str,
    env: Mapping[str, str],
    stdin: bytes,
    port: int = DEFAULT_PORT,
    run_dir: str = DEFAULT_RUN_DIR,
    token: Optional[bytes] = None,
    timeout: float = 150.0,
) -> Tuple[int, str, str]:
    """One call through the agent: (exit code, stdout, stderr).

    AgentUnreachable before anything is sent; after that, an error like a
    shim's code 11 is raised as ConnectionError.
    """
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as e:
        raise AgentUnreachable(str(e)) from e
    with sock:
        try:
            hello, _sep, key = _recv_line(sock).decode("ascii", "replace").strip().partition(" ")
        except OSError as e:
            raise AgentUnreachable(str(e)) from e
        if hello != GREETING or not _KEY_RE.match(key):
            raise AgentUnreachable("no agent greeting on 127.0.0.1:%d" % port)
        if token is None:
            try:
                with open(token_path(run_dir, key), "rb") as f:
                    token = f.readline().strip()
            except OSError as e:
                raise AgentUnreachable("cannot read the agent's token: %s" % e) from e
        fields = [token, plugin.encode()] + [("%s=%s" % kv).encode() for kv in env.items()] + [b"", stdin]
        sock.settimeout(timeout)
        sock.sendall(b"".join(f + b"\0" for f in fields))
        head = _recv_line(sock).decode("ascii", "replace").split()
        if len(head) != 3 or not all(h.isdigit() for h in head):
            raise ConnectionError("the agent took the call but gave no answer")
        out = _recv_exact(sock, int(head[1]))
        err = _recv_exact(sock, int(head[2]))
        return int(head[0]), out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def stats(port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR, timeout: float = 10.0) -> Dict[str, object]:
    """The agent's counters (pid, digest, calls, errors, ...); AgentUnreachable when none runs."""
    code, out, _err = call(STATS, {}, b"", port, run_dir, timeout=timeout)
    if code != 0:
        raise ConnectionError("the agent refused the stats request: %s" % out.strip())
    return json.loads(out)


def status(port: int = DEFAULT_PORT, run_dir: str = DEFAULT_RUN_DIR, expect_digest: Optional[str] = None) -> Tuple[int, Dict[str, object], str]:
    """`nodenet-agent --status [--expect-digest D]`'s verdict: (exit code, the status JSON, an
    error): 0 and the counters with running=true; STATUS_NOT_SERVING and {"running": false,
    "reason"} when none answers here; STATUS_OTHER_RUNTIME when it serves another runtime than
    `expect_digest`; 1, {} and the error when it answered but not with its counters."""
    try:
        counters = stats(port, run_dir)
    except AgentUnreachable as e:
        return STATUS_NOT_SERVING, {"running": False, "reason": str(e)}, ""
    except (OSError, ValueError) as e:
        return 1, {}, "the agent did not answer the status request: %s" % e
    counters["running"] = True
    if expect_digest and counters.get("digest") != expect_digest:
        return STATUS_OTHER_RUNTIME, counters, ""
    return 0, counters, ""
