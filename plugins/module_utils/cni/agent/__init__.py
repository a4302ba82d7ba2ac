# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The resident node agent and the thin shims that call it.

A runtime execs `<bin_dir>/<plugin>`: a bash shim (`shim.py` renders it)
that connects to 127.0.0.1:<port> *in the network namespace it was exec'd
in*, proves it is root with a token only root can read, and sends env +
stdin; the agent (`server.py`) runs `skel.run` on a worker thread and sends
back exit code, stdout and stderr. No listener: the shim runs the plugin
in-process, as before. Why loopback TCP and not a unix socket: see
docs/internals.md ("The agent").
"""

# A privileged port: only root can listen on it, so a shim never hands a
# call (or the token) to a non-root impostor in its namespace.
DEFAULT_PORT = 1021
# Token files live here, 0700 root; one file per agent instance.
DEFAULT_RUN_DIR = "/run/nodenet-cni"
# The agent's first line on every accepted connection: "<GREETING> <key>\n";
# the shim reads the token from <run_dir>/agent-<key>.token.
GREETING = "nodenet-agent/1"
# Seconds a shim waits for the answer to a call the agent accepted; then it
# reports code 11 (try again later) and never runs the call itself.
ANSWER_TIMEOUT = 150
# Seconds a shim waits for the greeting before running the plugin itself
# (nothing was sent yet, so the call cannot run twice).
GREETING_TIMEOUT = 5
# The largest stdin a shim sends to the agent (its request limit is 16 MiB
# with the env); a larger one runs in the shim itself.
MAX_STDIN = 15 << 20
# The pseudo-plugin a root client asks for the agent's counters.
STATS = ".stats"
# `nodenet-agent --status [--expect-digest D]` exit codes besides 0 (it serves,
# that runtime) and 1 (no answer to the request): read by the role's agent
# tasks and by cni_node_check.
STATUS_NOT_SERVING = 3  # no agent listens in this namespace
STATUS_OTHER_RUNTIME = 4  # it serves another runtime than D


def token_path(run_dir: str, key: str) -> str:
    return "%s/agent-%s.token" % (run_dir.rstrip("/"), key)
