# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nodenet.cni.cni_node_check: is this node already what the cni_node role makes it?

Three parts, in order, each told the way the task that converges it tells it,
without changing anything; the first part that is not current ends the check:

- plugin: cni_plugin's own look (plugin_utils/node_actions.py's
  PluginRuntimeMixin: one shell command, judged by module_utils/install_check.py
  with the module's rules against this controller's bundle digest). Current
  only when the look proves cni_plugin would change nothing; "absent" (a new
  node: its answer comes at once) and "unknown" are not current;
- agent: the node agent serves that runtime (the test of the role's agent
  tasks, `<agent> --status --expect-digest <digest>`: its verdict,
  agent/client.py's status);
- state: cni_node_state in check mode, in that runtime (NodeStateMixin, the
  same path the cni_node_state action takes): current when no part would
  change and none fails.

The agent and the state are asked in one run of that runtime's state entry
point on the node (one Python start; only after the plugin look proved the
runtime intact); the agent's verdict is still judged first.

Everything runs on the node through the connection (no module run, nothing
written), so the check is read-only under --check and without it alike.
"""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleActionFail, AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.nodenet.cni.plugins.filter.node_network import agent_status
from ansible_collections.nodenet.cni.plugins.module_utils import install_check
from ansible_collections.nodenet.cni.plugins.module_utils.cni.agent import STATUS_NOT_SERVING, STATUS_OTHER_RUNTIME
from ansible_collections.nodenet.cni.plugins.plugin_utils import node_actions

ARGUMENT_SPEC = dict(
    plugin=dict(type="dict", required=True),
    agent=dict(type="bool"),
    state=dict(type="dict"),
)
# what this check sets for cni_node_state
STATE_INTERNAL = ("runtime_dir",)
AGENT_NOT_SERVING = {STATUS_NOT_SERVING: "no agent serves on the node", STATUS_OTHER_RUNTIME: "the agent serves another runtime"}


class ActionModule(node_actions.PluginRuntimeMixin, node_actions.NodeStateMixin, ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        try:
            args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
            result.update(self._check(args, task_vars))
        except AnsibleActionFail as e:
            result.update(e.result)
        return result

    def _check(self, args, task_vars):
        plugin_args = dict(args["plugin"])
        state_args = dict(args["state"]) if args["state"] is not None else None
        for option in node_actions.PLUGIN_INTERNAL_OPTIONS:
            if option in plugin_args:
                raise AnsibleActionFail("plugin.%s is set by the cni_plugin action plugin; do not pass it" % option)
        if plugin_args.get("state", "present") != "present":
            raise AnsibleActionFail("plugin.state must be present: the check looks for the plugins cni_plugin installs")
        for option in STATE_INTERNAL:
            if state_args is not None and option in state_args:
                raise AnsibleActionFail("state.%s is the plugin runtime's that the check finds; do not pass it" % option)

        installs_agent = boolean(plugin_args.get("agent", True), strict=False)
        agent = installs_agent if args["agent"] is None else args["agent"]
        if agent and not installs_agent:
            raise AnsibleActionFail("agent: plugin.agent is false, so there is no agent launcher to ask")

        digest = node_actions.plugin_bundle()["digest"]
        seen, plan = self._plugin_look(plugin_args, digest)
        if seen != install_check.CURRENT:
            if seen == install_check.ABSENT:
                return self._not_current("plugin", "the plugin runtime %s is not installed" % digest[:12])
            return self._not_current("plugin", "the installed plugins are not proven current (cni_plugin would look itself, and repair what differs)")
        found = {"plugin": plan.result}

        checked, asked = None, {}
        if state_args is not None:
            # the node state, and the agent in the same run on the node (one Python start, not two)
            state_args["runtime_dir"] = plan.rdir
            ask = {"port": plan.port, "run_dir": plan.run_dir, "expect_digest": digest} if agent else None
            checked = self._state_in_runtime(state_args, task_vars, check=True, diff=False, agent=ask, rest=asked)

        if agent:
            if "agent" in asked:
                status = {"rc": asked["agent"].get("rc", -1), "status": asked["agent"].get("status") or {},
                          "stderr": str(asked["agent"].get("error") or "")[-500:]}
            else:  # (no state to check, or it could not run in the runtime)
                status = self._agent_status(str(plan.result["agent"]), digest)
            found["agent_status"] = status["status"]
            if status["rc"] != 0:
                why = AGENT_NOT_SERVING.get(status["rc"], "the agent's status failed (rc %s): %s" % (status["rc"], status["stderr"]))
                return self._not_current("agent", "%s (want %s)" % (why, digest[:12]), **found)

        if state_args is not None:
            if checked is None:
                return self._not_current("state", "the node state cannot be checked in the plugin runtime %s (cni_node_state runs its module)"
                                         % plan.rdir, **found)
            checked.pop("invocation", None)
            found["state"] = checked
            if checked.get("failed"):
                return self._not_current("state", "cni_node_state would fail: %s" % checked.get("msg", ""), **found)
            if checked.get("changed"):
                return self._not_current("state", "cni_node_state would change: %s" % ", ".join(checked.get("changed_parts") or ["?"]), **found)
        return dict(found, changed=False, current=True, not_current="", msg="the node is current")

    def _agent_status(self, agent, digest):
        """The role's agent test: `<agent> --status --expect-digest <digest>` (0: it serves that
        runtime; 3: none serves; 4: it serves another), and the status JSON it printed."""
        done = self._low_level_execute_command("%s --status --expect-digest %s" % (shlex.quote(agent), shlex.quote(digest)))
        try:
            status = agent_status({"stdout_lines": str(done.get("stdout", "")).splitlines()})
        except AnsibleFilterError:
            status = {}
        return {"rc": done.get("rc", -1), "status": status, "stderr": str(done.get("stderr", "")).strip()[-500:]}

    @staticmethod
    def _not_current(part, why, **found):
        return dict(found, changed=False, current=False, not_current=part, msg="%s: %s" % (part, why))
