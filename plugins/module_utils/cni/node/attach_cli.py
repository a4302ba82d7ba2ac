# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_attach without a module run: one request as JSON on stdin, the module's result as JSON on stdout.

site.yml's probe pods (roles/cni_node/tasks/probe_attach.yml, probe_remove.yml)
are two attaches per node and batch. As module runs each cost AnsiballZ's
floor on the node (a Python start, unzipping, compiling Ansible's
module_utils: ~0.2 CPU s) and, on the controller, building cni_attach's
payload. The probe runs this instead, through `ansible.builtin.raw`, in the
plugin runtime cni_plugin installed (its sealed pycs), the way a shim's
in-process fallback does (agent/shim.py):

    printf '%s' '<request>' | <interpreter> -I -S -c '<cni_node_probe_cli>' <runtime dir>

(cni_node_probe_cli: roles/cni_node/vars/main.yml, which puts the runtime
directory on sys.path and calls `main`, or says in one line that the runtime
is not there.)

The work is the module's: the same `Attacher` (node/attach.py), the same
option checks (`request_from_params`, each refusal naming its option), the
same result dict (`Outcome.as_dict`, plus `cmd`/`rc`/`stdout`/... when a
`command` ran). No check mode (the probes do not run under --check) and no
diff. On failure: the message on stderr ("cni_attach: <option>: <why>"), the
module's failure details as JSON on stdout ({"failed": true, "msg", "trace",
...}), exit code 1; a request that is not what cni_attach would accept exits
2 and changes nothing.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, Optional, TextIO, Tuple

EXIT_FAILED = 1  # the attach failed: the module's fail_json
EXIT_BAD_REQUEST = 2  # the request is refused before anything is read or changed

# cni_attach's options (plugins/modules/cni_attach.py ARGUMENT_SPEC and node_libs'
# bin_dir / conf_dir / cache_dir): name -> (accepted JSON types, default).
_STR = (str,)
OPTIONS: Dict[str, Tuple[Tuple[type, ...], Any]] = {
    "name": (_STR, None),
    "state": (_STR, "present"),
    "network": (_STR, None),
    "netns": (_STR, None),
    "ifname": (_STR, "eth0"),
    "cni_args": ((dict,), {}),
    "capability_args": ((dict,), {}),
    "command": (_STR, None),
    "command_timeout": ((int,), 60),
    "conf_dir": (_STR, "/etc/cni/net.d"),
    "cache_dir": (_STR, "/var/lib/cni"),
    "bin_dir": ((list,), ["/opt/cni/bin"]),
}
STATES = ("present", "checked", "absent")


class RequestError(Exception):
    """The request itself is wrong (exit 2): the message names the field."""


def parse_request(text: str) -> Dict[str, Any]:
    """The request JSON -> cni_attach's params, with its defaults; refusals name the field."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise RequestError("the request on stdin is not JSON: %s" % e)
    if not isinstance(raw, dict):
        raise RequestError("the request on stdin must be a JSON object of cni_attach options, got %s" % type(raw).__name__)
    unknown = sorted(set(raw) - set(OPTIONS))
    if unknown:
        raise RequestError("%s: not a cni_attach option (options: %s)" % (", ".join(unknown), ", ".join(sorted(OPTIONS))))
    params: Dict[str, Any] = {}
    for key, (types, default) in OPTIONS.items():
        value = raw.get(key)
        if value is None:
            value = default.copy() if isinstance(default, (dict, list)) else default
        elif not isinstance(value, types) or isinstance(value, bool):
            raise RequestError("%s: must be %s, got %r" % (key, " or ".join(t.__name__ for t in types), value))
        params[key] = value
    if params["name"] is None:
        raise RequestError("name: required")
    if params["state"] not in STATES:
        raise RequestError("state: must be one of %s, got %r" % (", ".join(STATES), params["state"]))
    if not all(isinstance(d, str) for d in params["bin_dir"]):
        raise RequestError("bin_dir: must be a list of paths, got %r" % (params["bin_dir"],))
    if params["command"] is not None and params["state"] == "absent":
        raise RequestError("command: runs only with state=present or state=checked, not with state=absent")
    return params


def run(params: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
    """cni_attach's main() on `params`: (exit code, the module's result or failure dict)."""
    from ..spec import CNIError
    from . import attach

    attacher: Optional[attach.Attacher] = None
    try:
        req = attach.request_from_params(params)
        attacher = attach.Attacher(req)
        outcome = {"present": attacher.present, "checked": attacher.checked, "absent": attacher.absent}[params["state"]]()
    except attach.AttachError as e:
        return EXIT_FAILED, dict(e.details, failed=True, msg=str(e))
    except CNIError as e:  # nothing expected here; still return what was traced
        details = attacher.out.as_dict() if attacher is not None else {}
        details.pop("changed", None)
        return EXIT_FAILED, dict(details, failed=True, msg=str(e))
    result = outcome.as_dict()
    if req.command and params["state"] != "absent":
        ran = attach.run_in_netns(outcome.netns, req.command, req.command_timeout)
        result.update(cmd=ran["cmd"], rc=ran["rc"], stdout=ran["stdout"], stderr=ran["stderr"], stdout_lines=ran["stdout_lines"])
        if ran["timed_out"]:
            msg = "command: killed after %d seconds (command_timeout); the attachment is kept" % req.command_timeout
            return EXIT_FAILED, dict(result, failed=True, msg=msg)
        if ran["rc"] != 0:
            return EXIT_FAILED, dict(result, failed=True, msg="command: exited with rc %s; the attachment is kept" % ran["rc"])
    return 0, result


def main(stdin: Optional[TextIO] = None, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> int:
    """One attach in this process, which then exits (the caller's SystemExit)."""
    import gc

    # as the shim's fallback: lazy pyroute2/netaddr, no cyclic GC (the process ends after one request)
    gc.disable()
    from ..agent.fallback import lazy_imports

    lazy_imports()
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        params = parse_request(stdin.read())
    except RequestError as e:
        stderr.write("cni_attach: %s\n" % e)
        json.dump({"failed": True, "msg": str(e)}, stdout)
        stdout.write("\n")
        return EXIT_BAD_REQUEST
    code, result = run(params)
    if code:
        stderr.write("cni_attach: %s\n" % result["msg"])
    json.dump(result, stdout, sort_keys=True)
    stdout.write("\n")
    return code
