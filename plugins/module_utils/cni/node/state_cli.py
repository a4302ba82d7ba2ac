# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_node_state's work, for the module and without a module run.

`converge()` is what nodenet.cni.cni_node_state does once its options are
checked: each part (pod_subnets, netconf, bridge, routes, boot) observed,
compared and, unless in check mode, changed, in that order; a part that
fails stops the parts after it. The module (plugins/modules/cni_node_state.py)
is a thin wrapper around it.

A roll-out's converge task runs it without a module run (no AnsiballZ
payload built on the controller, no module floor on the node): the action
plugin (plugins/action/cni_node_state.py) checks the task's options on the
controller with the module's own argument specs (module_utils/node_state.py)
and runs this file's `main` in the plugin runtime cni_plugin installed on
the node (its sealed pycs), one `python3 -B -I -S` through the connection:

    <interpreter> -B -I -S -c '<node_state.BOOTSTRAP>' <runtime dir> <PROTOCOL>

The request on stdin: {"protocol": PROTOCOL, "params": {part: its validated
options, with bin_dir}, "check": bool, "diff": bool}, and for
nodenet.cni.cni_node_check, which asks the node agent in the same run
(one Python start on the node instead of two), "agent": {"port", "run_dir",
"expect_digest"}. The answer on stdout: {"result": the module's result (on
failure with "failed" and the module's "msg"), "warnings": the module's
warnings}, and with "agent" in the request, "agent": {"rc", "status",
"error"}: what `nodenet-agent --status --expect-digest` would exit with,
print and log (agent/client.py's status). PROTOCOL changes whenever the
request or the answer does; the action runs the module instead on a
runtime with another one (or none).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, TextIO, Tuple

from . import boot_files, bridge_state, netconf_file, owned_routes, pod_subnet_file
from .part import PartFailed

PROTOCOL = 2
PARTS = ("pod_subnets", "netconf", "bridge", "routes", "boot")
# the module's options (node_libs.node_module adds bin_dir; the action plugin's runtime_dir: module_utils/node_state.py)
ARGUMENT_SPEC: Dict[str, Any] = dict({part: dict(type="dict") for part in PARTS}, pod_subnets=dict(type="dict", options=pod_subnet_file.ARGUMENT_SPEC))
# each part's options and required_if: its module's own
PART_SPECS: Dict[str, Tuple[Dict[str, Any], List[Any]]] = dict(
    pod_subnets=(pod_subnet_file.ARGUMENT_SPEC, []),
    netconf=(netconf_file.ARGUMENT_SPEC, netconf_file.REQUIRED_IF),
    bridge=(bridge_state.ARGUMENT_SPEC, []),
    routes=(owned_routes.ARGUMENT_SPEC, []),
    boot=(boot_files.ARGUMENT_SPEC, boot_files.REQUIRED_IF),
)
LIBRARIES = ("pyroute2", "netaddr")


class PartInputError(Exception):
    """A part's options fail its back-end's own checks: the message is `<part>.<option>: <why>`."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def libraries(params: Dict[str, Any]) -> List[str]:
    """The libraries the wanted parts import: pyroute2 and netaddr for bridge or routes, netaddr for netconf."""
    if "bridge" in params or "routes" in params:
        return list(LIBRARIES)
    return ["netaddr"] if "netconf" in params else []


def check_part(part: str, params: Dict[str, Any]) -> Any:
    """The part's spec, from its back-end's own checks (CNIError/BootFilesError name the option)."""
    from ..spec import CNIError

    try:
        if part == "pod_subnets":
            return pod_subnet_file.desired_from_params(params)
        if part == "netconf":
            return netconf_file.spec_from_params(params)
        if part == "bridge":
            return bridge_state.spec_from_params(params)
        if part == "routes":
            return owned_routes.desired_from_params(params)
        return boot_files.BootSpec.from_params(params)
    except (CNIError, boot_files.BootFilesError, pod_subnet_file.PodSubnetsError) as e:
        raise PartInputError("%s.%s" % (part, e.msg)) from e


def check_parts(params: Dict[str, Any]) -> Dict[str, Any]:
    """Every wanted part's spec, in order, before anything is observed; the first bad one raises PartInputError."""
    return {part: check_part(part, params[part]) for part in PARTS if part in params}


def converge(params: Dict[str, Any], specs: Dict[str, Any], check: bool, diff: bool) -> Tuple[Dict[str, Any], List[str]]:
    """Each part reconciled in order: (the module's result, its warnings). When a part fails, the
    result is the module's fail_json: "failed", "msg" naming the part, "failed_part", and the parts before it."""
    result: Dict[str, Any] = dict(changed=False, changed_parts=[])
    warnings: List[str] = []
    diffs: List[Any] = []

    def done(part: str, res: Dict[str, Any]) -> None:
        part_diff = res.pop("diff", None)
        if part_diff:
            diffs.extend(part_diff if isinstance(part_diff, list) else [part_diff])
        result[part] = res
        if res["changed"]:
            result["changed_parts"].append(part)

    try:
        if "pod_subnets" in specs:
            done("pod_subnets", pod_subnet_file.reconcile(specs["pod_subnets"], check, diff))
        if "netconf" in specs:
            res, netconf_warnings = netconf_file.reconcile(specs["netconf"], params["netconf"], check, diff)
            warnings.extend("netconf: %s" % warning for warning in netconf_warnings)
            done("netconf", res)
        if "bridge" in specs or "routes" in specs:
            # the agent's synchronous rtnetlink socket on pyroute2's messages (no event loop per call, no pyroute2.iproute import)
            from ..net.rtnl import Rtnl

            with Rtnl() as ipr:
                if "bridge" in specs:
                    done("bridge", bridge_state.reconcile(ipr, specs["bridge"], params["bridge"]["state"] == "present", check, diff))
                if "routes" in specs:
                    done("routes", owned_routes.reconcile(ipr, specs["routes"], params["routes"], check, diff))
        if "boot" in specs:
            try:
                done("boot", boot_files.reconcile(specs["boot"], check, diff))
            except boot_files.BootFilesError as e:
                raise PartFailed(e.msg, names_option=True) from e
    except PartFailed as e:
        failed = next(part for part in PARTS if part in specs and part not in result)
        result.pop("changed")
        failure = dict(result, **{failed: e.extra})
        return dict(failure, failed=True, msg=e.in_part(failed), changed=bool(result["changed_parts"]), failed_part=failed), warnings

    result["changed"] = bool(result["changed_parts"])
    if diff:
        result["diff"] = diffs
    return result, warnings


class RequestError(Exception):
    """The request is not what the action plugin sends (another protocol, a malformed one)."""


def parse_request(text: str) -> Tuple[Dict[str, Any], bool, bool, Optional[Dict[str, Any]]]:
    """The request JSON -> (params by part, check, diff, the agent to ask or None)."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise RequestError("the request on stdin is not JSON: %s" % e)
    if not isinstance(raw, dict) or raw.get("protocol") != PROTOCOL:
        raise RequestError("not a cni_node_state request of protocol %d" % PROTOCOL)
    params, check, diff = raw.get("params"), raw.get("check"), raw.get("diff")
    if not isinstance(params, dict) or not isinstance(check, bool) or not isinstance(diff, bool):
        raise RequestError("the request needs params (an object), check and diff (booleans)")
    unknown = sorted(set(params) - set(PARTS))
    if unknown:
        raise RequestError("params: not a part: %s" % ", ".join(unknown))
    if not all(isinstance(p, dict) for p in params.values()):
        raise RequestError("params: each part's options must be an object")
    agent = raw.get("agent")
    if agent is not None and not (
        isinstance(agent, dict) and isinstance(agent.get("port"), int) and isinstance(agent.get("run_dir"), str)
        and isinstance(agent.get("expect_digest"), str)
    ):
        raise RequestError("agent: an object with port (an integer), run_dir and expect_digest (strings)")
    return params, check, diff, agent


def run(text: str) -> Dict[str, Any]:
    """One request -> the answer (the module's result and warnings; the agent's status when asked)."""
    params, check, diff, agent = parse_request(text)
    answer: Dict[str, Any] = {}
    if agent is not None:
        from ..agent.client import status

        rc, counters, error = status(agent["port"], agent["run_dir"], agent["expect_digest"])
        answer["agent"] = {"rc": rc, "status": counters, "error": error}
    try:
        specs = check_parts(params)
    except PartInputError as e:
        return dict(answer, result={"failed": True, "msg": e.msg}, warnings=[])
    result, warnings = converge(params, specs, check, diff)
    return dict(answer, result=result, warnings=warnings)


def main(stdin: Optional[TextIO] = None, stdout: Optional[TextIO] = None) -> int:
    """One converge in this process, which then exits (the caller's SystemExit): 0 with the answer
    on stdout (a failed part is in it), 2 for a request this entry point does not take."""
    import gc

    # as the shim's fallback: lazy pyroute2/netaddr, no cyclic GC (the process ends after one request)
    gc.disable()
    from ..agent.fallback import lazy_imports

    lazy_imports()
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        answer = run(stdin.read())
    except RequestError as e:
        json.dump({"result": {"failed": True, "msg": "cni_node_state: %s" % e}, "warnings": []}, stdout)
        stdout.write("\n")
        return 2
    json.dump(answer, stdout, sort_keys=True)
    stdout.write("\n")
    return 0
