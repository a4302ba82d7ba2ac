# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller half of nodenet.cni.cni_node_state: its work without a module run.

With `runtime_dir` (where cni_plugin installed the plugin runtime on the
node), the task's options are checked here with the module's own argument
specs (module_utils/node_state.py: the same messages) and the module's own
code runs in that runtime, one `python3 -B -I -S` on the node with the
validated options on stdin (cni/node/state_cli.py): no AnsiballZ payload to
build (the collection's module_utils, on the controller, while the other
forks wait) and no module floor on the node (a Python start with site,
unzipping, ansible.module_utils.basic). The same result, check mode, diff
and failures as the module.

Without `runtime_dir`, or where the node has no runtime with this
collection's node-state entry point of the same protocol (under --check on
a first converge, a runtime older than the entry point), or when
AnsibleModule itself would refuse the options, the module runs as always.
"""

from __future__ import annotations

import json
import shlex

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.vars.clean import remove_internal_keys
from ansible_collections.nodenet.cni.plugins.module_utils import node_state
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import state_cli

MODULE = "nodenet.cni.cni_node_state"
DEFAULT_INTERPRETER = "/usr/bin/python3"
MODULE_PROFILE = "legacy"  # the module's result serialization (AnsibleModule's default)

display = Display()


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        module_args = self._task.args.copy()
        try:
            done = self._in_runtime(module_args, task_vars) if module_args.get("runtime_dir") else None
            if done is None:
                done = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            result.update(done)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _in_runtime(self, module_args, task_vars):
        """The module's result from the node's plugin runtime, or None: run the module."""
        module_params, parts, error = node_state.validate(module_args)
        if module_params is None:
            return None  # AnsibleModule's own refusal, in its words
        invocation = {"module_args": module_params}
        if error:
            return self._as_module_result(dict(failed=True, msg=error, invocation=invocation))
        request = {"protocol": state_cli.PROTOCOL, "params": parts, "check": bool(self._task.check_mode), "diff": bool(self._task.diff)}
        cmd = " ".join(
            shlex.quote(word) for word in (self._interpreter(task_vars), "-B", "-I", "-S", "-c", node_state.BOOTSTRAP,
                                           module_params["runtime_dir"], str(state_cli.PROTOCOL))
        )
        ran = self._low_level_execute_command(cmd, in_data=json.dumps(request).encode())
        rc, stdout, stderr = ran.get("rc"), ran.get("stdout", ""), ran.get("stderr", "")
        try:
            answer = json.loads(stdout)
        except ValueError:
            answer = None
        if rc == node_state.FALLBACK_RC and isinstance(answer, dict) and "nodenet_cni_fallback" in answer:
            display.vvv("cni_node_state: running the module: %s" % answer["nodenet_cni_fallback"], host=self._play_context.remote_addr)
            return None
        if rc in (126, 127):  # the interpreter is not there: the module says so, in Ansible's words
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
            return self._as_module_result(dict(
                failed=True, rc=rc, module_stdout=stdout, module_stderr=stderr, invocation=invocation,
                msg="cni_node_state in the plugin runtime %s gave no result (rc %s): %s"
                    % (module_params["runtime_dir"], rc, (stderr or stdout).strip()[-2000:])))
        done = dict(answer["result"], invocation=invocation)
        if answer.get("warnings"):
            done["warnings"] = list(answer["warnings"])
        return self._as_module_result(done)

    def _as_module_result(self, done):
        """`done` (what the module's exit_json or fail_json would print) as _execute_module returns a
        module's result: parsed the same way (a failure is the module's), internal keys removed."""
        data = self._parse_returned_data({"rc": 0, "stdout": json.dumps(done), "stderr": ""}, MODULE_PROFILE)
        remove_internal_keys(data)
        return data

    def _interpreter(self, task_vars):
        """The Python a module run would use on this node: ansible_python_interpreter, else the discovered one."""
        if self._task.delegate_to:  # the delegated host's variables
            task_vars = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to) or {}
        configured = task_vars.get("ansible_python_interpreter")
        if configured is not None:
            configured = self._templar.template(configured)
        if configured and not str(configured).startswith("auto"):
            return str(configured)
        discovered = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
        if discovered:
            return str(self._templar.template(discovered))
        return DEFAULT_INTERPRETER
