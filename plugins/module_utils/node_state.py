# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_node_state's option checks, shared by the module and its action plugin.

The module (on the node) and the action plugin (on the controller, before it
runs the module's work in the node's plugin runtime: cni/node/state_cli.py)
check a task's options with the same argument specs and give the same
messages: a bad part option fails naming `<part>.<option>`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from . import node_libs
from .cni.node import state_cli

# The module's options as AnsibleModule sees them: the parts, bin_dir (node_libs.node_module) and
# runtime_dir (the action plugin's: where to run the work without a module run; the module ignores it).
RUNTIME_DIR_OPTION = dict(type="path")
ARGUMENT_SPEC: Dict[str, Any] = dict(state_cli.ARGUMENT_SPEC, runtime_dir=RUNTIME_DIR_OPTION)
FULL_SPEC: Dict[str, Any] = dict(ARGUMENT_SPEC, bin_dir=dict(type="list", elements="path", default=list(node_libs.DEFAULT_BIN_DIRS)))

# Run by the action plugin with the runtime dir and protocol as arguments: the runtime's entry point
# when it has one of this protocol, else exit 3 with a reason (the action runs the module then).
FALLBACK_RC = 3
BOOTSTRAP = (
    "import os, sys, json; r, v = sys.argv[1], int(sys.argv[2]); "
    "f = lambda why: (print(json.dumps({'nodenet_cni_fallback': why})), sys.exit(%d)); "
    "os.path.isfile(os.path.join(r, 'nodenet_cni', 'node', 'state_cli.py')) or f('no node-state entry point in %%s' %% r); "
    "sys.path.insert(0, r); from nodenet_cni.node import state_cli; "
    "state_cli.PROTOCOL == v or f('the runtime in %%s speaks protocol %%s, not %%s' %% (r, state_cli.PROTOCOL, v)); "
    "raise SystemExit(state_cli.main())" % FALLBACK_RC
)


def part_params(part: str, value: Dict[str, Any], bin_dir: Any) -> Tuple[Optional[Dict[str, Any]], str]:
    """A part's options validated by its module's own argument spec: (params with defaults and
    the module's bin_dir, "") or (None, the module's message naming `<part>: ...`)."""
    spec, required_if = state_cli.PART_SPECS[part]
    result = ArgumentSpecValidator(spec, required_if=required_if).validate(value)
    if result.error_messages:
        messages = [("unsupported options: " if isinstance(e, UnsupportedError) else "") + e.msg for e in result.errors.errors]
        return None, "%s: %s" % (part, "; ".join(messages))
    params = result.validated_parameters
    params["bin_dir"] = bin_dir
    return params, ""


def validate(args: Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any], str]:
    """A task's options as the module would take them: (the module's params, or None when AnsibleModule
    itself would refuse them; each wanted part's validated params; the module's failure message or "")."""
    top = ArgumentSpecValidator(FULL_SPEC).validate(args)
    if top.error_messages:
        return None, {}, ""
    module_params = top.validated_parameters
    parts: Dict[str, Any] = {}
    for part in state_cli.PARTS:
        if module_params[part] is None:
            continue
        params, error = part_params(part, module_params[part], module_params["bin_dir"])
        if error:
            return module_params, {}, error
        parts[part] = params
    return module_params, parts, ""
