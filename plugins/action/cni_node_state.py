# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller half of nodenet.cni.cni_node_state: its work without a module run.

With `runtime_dir` (where cni_plugin installed the plugin runtime on the
node), the task's options are checked here with the module's own argument
specs (module_utils/node_state.py: the same messages) and the module's own
code runs in that runtime, one `python3 -B -I -S` on the node with the
validated options on stdin (cni/node/state_cli.py; the step is
plugin_utils/node_actions.py's NodeStateMixin, which cni_node_check uses
too): no AnsiballZ payload to build (the collection's module_utils, on the
controller, while the other forks wait) and no module floor on the node (a
Python start with site, unzipping, ansible.module_utils.basic). The same
result, check mode, diff and failures as the module.

Without `runtime_dir`, or where the node has no runtime with this
collection's node-state entry point of the same protocol (under --check on
a first converge, a runtime older than the entry point), or when
AnsibleModule itself would refuse the options, the module runs as always.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.nodenet.cni.plugins.plugin_utils import node_actions

MODULE = "nodenet.cni.cni_node_state"


class ActionModule(node_actions.NodeStateMixin, ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        module_args = self._task.args.copy()
        try:
            done = None
            if module_args.get("runtime_dir"):
                done = self._state_in_runtime(module_args, task_vars, bool(self._task.check_mode), bool(self._task.diff))
            if done is None:
                done = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            result.update(done)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
