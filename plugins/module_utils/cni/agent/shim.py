# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files cni_plugin puts in the bin dir: plugin shims and the agent launcher.

A shim is bash because an exec'd bash with `/dev/tcp` costs ~2 ms where a
Python interpreter costs ~8 ms before it does anything; the call itself is
served by the resident agent. Protocol (one TCP connection per call):

    agent -> shim   "nodenet-agent/1 <key>\\n"            (on accept)
    shim  -> agent  token NUL plugin NUL (NAME=value NUL)* NUL stdin NUL
    agent -> shim   "<exit code> <stdout bytes> <stderr bytes>\\n" stdout stderr

Everything before the request is sent may fall back to running the plugin
here (the agent never saw the call; so does a stdin over MAX_STDIN, which
the agent's request limit would refuse); after it, the agent's answer or a
code 11 error is final: a call never runs twice.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional

from . import ANSWER_TIMEOUT, GREETING, GREETING_TIMEOUT, MAX_STDIN

LAUNCHER_MARK = "# Managed by nodenet.cni.cni_plugin; do not edit."
PACKAGE_NAME = "nodenet_cni"
AGENT_NAME = "agent"  # installed as <prefix>agent

# The first lines of every file we install; describe/parse read them back.
_HEADER_PATTERN = (
    r"\A#!(?P<shebang>[^\n]+)\n" + re.escape(LAUNCHER_MARK) + r"\n"
    r"# (?:CNI plugin '(?P<canonical>[a-z-]+)'|(?P<agent>nodenet agent)), Python runtime in '(?P<rdir>[^'\n]+)'\n"
    r"# Python (?P<interpreter>\S+); agent 127\.0\.0\.1:(?P<port>\d+), tokens in (?P<run_dir>[^\n]+)\n"
)
_header_re: Optional["re.Pattern[str]"] = None  # compiled on first use: an exec'd plugin that delegates reads one header

# Bash parses each command as it reaches it, and the parse is a good part
# of a shim's cost: the path of a served call is a few cheap commands (glob
# patterns, not regexes, which bash compiles at every test; no function
# definitions; stdin read with -N, in blocks, not byte by byte as -d does
# from a pipe); what only a fallback needs is never parsed on that path.
_SHIM = r"""#!/bin/bash
{mark}
# CNI plugin '{canonical}', Python runtime in '{rdir}'
# Python {interpreter}; agent 127.0.0.1:{port}, tokens in {run_dir}
# The call goes to the nodenet agent of this network namespace (loopback is
# per namespace); only when no agent answers does the plugin run here.
LC_ALL=C
trap '' PIPE
shopt -s extglob
here=({interpreter} -I -S -c 'import sys; sys.path.insert(0, "{rdir}"); from {package}.agent.fallback import main; raise SystemExit(main("{canonical}"))')
{{ exec 3<>/dev/tcp/127.0.0.1/{port}; }} 2>/dev/null || exec "${{here[@]}}"
IFS= read -r -N {max_stdin_plus} stdin
env=()
for name in ${{!CNI_@}} ${{!NODENET_CNI_@}}; do env+=("$name=${{!name}}"); done
[[ -v PATH ]] && env+=("PATH=$PATH")
IFS=' ' read -r -t {greeting_timeout} hello key <&3 && [[ $hello == {greeting} && $key == +([0-9])-+([0-9]) ]] && ((${{#stdin}} <= {max_stdin})) &&
  {{ IFS= read -r token <"{run_dir}/agent-$key.token"; }} 2>/dev/null || exec 3>&- "${{here[@]}}" < <(printf '%s' "$stdin"; exec cat)
# From here the call is the agent's: its answer, or code 11, never a second run.
{{ printf '%s\0' "$token" {canonical} "${{env[@]}}" "" "$stdin" >&3; }} 2>/dev/null
if IFS=' ' read -r -t {answer_timeout} code olen elen <&3 && [[ $code == +([0-9]) && $olen == +([0-9]) && $elen == +([0-9]) ]]; then
  out='' err=''
  ((olen == 0)) || IFS= read -r -N "$olen" out <&3
  ((elen == 0)) || IFS= read -r -N "$elen" err <&3
  if ((${{#out}} == olen && ${{#err}} == elen)); then
    [[ -z $err ]] || printf '%s' "$err" >&2
    printf '%s' "$out"
    exit "$code"
  fi
fi
version=''
[[ $stdin =~ \"cniVersion\"[[:space:]]*:[[:space:]]*\"([0-9.]+)\" ]] && version=${{BASH_REMATCH[1]}}
printf '{{"cniVersion":"%s","code":11,"msg":"the nodenet agent took the call but gave no answer; try again"}}\n' "$version"
exit 1
"""

_AGENT = """#!{interpreter} -I
{mark}
# nodenet agent, Python runtime in '{rdir}'
# Python {interpreter}; agent 127.0.0.1:{port}, tokens in {run_dir}
# Serves the shims exec'd in the network namespace it is started in.
import sys
sys.path.insert(0, {rdir!r})
from {package}.agent.server import main
raise SystemExit(main(sys.argv[1:], port={port}, run_dir={run_dir!r}))
"""

_SAFE = re.compile(r"\A[A-Za-z0-9_./+-]+\Z")


def _check_path(value: str, what: str) -> str:
    # baked into shell and Python source: no quoting games
    if not _SAFE.match(value) or not value.startswith("/"):
        raise ValueError("%s %r must be an absolute path of [A-Za-z0-9_./+-]" % (what, value))
    return value


def _launcher_fields(interpreter: str, runtime_dir: str, port: int, run_dir: str) -> Dict[str, object]:
    """What the shims and the agent launcher both bake in, each value checked."""
    return dict(
        mark=LAUNCHER_MARK,
        interpreter=_check_path(interpreter, "interpreter"),
        rdir=_check_path(runtime_dir, "runtime dir"),
        port=int(port),
        run_dir=_check_path(run_dir, "agent run dir"),
        package=PACKAGE_NAME,
    )


def render_shim(canonical: str, interpreter: str, runtime_dir: str, port: int, run_dir: str) -> str:
    return _SHIM.format(
        canonical=canonical,
        greeting=GREETING,
        greeting_timeout=GREETING_TIMEOUT,
        answer_timeout=ANSWER_TIMEOUT,
        max_stdin=MAX_STDIN,
        max_stdin_plus=MAX_STDIN + 1,
        **_launcher_fields(interpreter, runtime_dir, port, run_dir),
    )


def render_agent(interpreter: str, runtime_dir: str, port: int, run_dir: str) -> str:
    return _AGENT.format(**_launcher_fields(interpreter, runtime_dir, port, run_dir))


def parse_header(text: str) -> Optional[Dict[str, str]]:
    """canonical ('' for the agent), interpreter, rdir, port, run_dir of an installed file; None if not ours."""
    global _header_re
    if _header_re is None:
        _header_re = re.compile(_HEADER_PATTERN)
    match = _header_re.match(text)
    if not match:
        return None
    return {
        "canonical": match.group("canonical") or "",
        "agent": "yes" if match.group("agent") else "",
        "interpreter": match.group("interpreter"),
        "rdir": match.group("rdir"),
        "port": match.group("port"),
        "run_dir": match.group("run_dir"),
    }


def read_header(path: str) -> Optional[Dict[str, str]]:
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    return parse_header(head.decode("utf-8", "replace"))


def own_runtime_dir() -> str:
    """The runtime dir this package runs from (<rdir>/nodenet_cni/agent/shim.py)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
