# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side steps shared by the collection's action plugins.

cni_plugin, cni_node_state and cni_node_check do some of the same work on
the controller; each step lives here once, as a mixin of ActionBase methods
(they run the node's commands through the action's connection):

- PluginRuntimeMixin: the plugin bundle (its sources and digest) and the
  one-command look whether a node holds exactly the runtime cni_plugin would
  install (module_utils/install_check.py: its plan and verdict);
- NodeCliMixin: a module's work run on the node without a module run, one
  `python3 -B -I -S` whose answer is the module's result (cni_plugin's
  install from the bundle on stdin, cni_node_state's converge); and the
  Python a module run would use on the node;
- NodeStateMixin: cni_node_state's work in the node's plugin runtime
  (cni/node/state_cli.py).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from typing import Any, Dict, Optional, Tuple

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display
from ansible.vars.clean import remove_internal_keys
from ansible_collections.nodenet.cni.plugins.module_utils import install_check, node_state
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import state_cli

DEFAULT_INTERPRETER = "/usr/bin/python3"
# cni_plugin's options that its action plugin sets itself (the shipped bundle and its digest)
PLUGIN_INTERNAL_OPTIONS = ("src", "digest")
MODULE_PROFILE = "legacy"  # a module's result serialization (AnsibleModule's default)

display = Display()


_BUNDLE: Dict[str, Any] = {}
# The digest, once per ansible run, for every worker (each a fork that does not keep what the one
# before it computed): reading and hashing the bundle's ~275 sources costs a worker ~40 ms of CPU.
_DIGEST_FILE = "nodenet-cni-bundle.digest"


def plugin_bundle() -> Dict[str, Any]:
    """The bundle's digest, and where its tar.gz is built once per ansible run (Ansible's
    private local tmp dir, shared by the forks); bundle_sources() gives its sources. The
    digest is computed once per run (the first worker writes it beside the tar.gz; the
    collection does not change during a run) and kept per process: the role's check
    templates the boot command with the runtime dir (filter plugin_runtime_dir) and then
    looks for that runtime, in one worker."""
    if _BUNDLE:
        return dict(_BUNDLE)
    stamp = os.path.join(C.DEFAULT_LOCAL_TMP, _DIGEST_FILE)
    try:
        with open(stamp) as f:
            digest = f.read().strip()
    except OSError:
        digest = ""
    if len(digest) != 64:
        digest = installer.bundle_digest(bundle_sources())
        fd, tmp = tempfile.mkstemp(prefix=".digest-", dir=C.DEFAULT_LOCAL_TMP)
        with os.fdopen(fd, "w") as f:
            f.write(digest)
        os.replace(tmp, stamp)  # atomic: another fork reads all of it or none
    _BUNDLE.update(digest=digest, path=os.path.join(C.DEFAULT_LOCAL_TMP, "nodenet-cni-bundle-%s.tar.gz" % digest[:32]))
    return dict(_BUNDLE)


def bundle_sources() -> Dict[str, bytes]:
    """The bundle's sources (relative path -> bytes) from this controller's collection and libraries."""
    try:
        return installer.collect_sources()
    except RuntimeError as e:
        raise AnsibleActionFail(
            "cannot build the plugin bundle on the controller: %s; install the controller's requirements into the "
            "Python that runs Ansible: %s -m pip install 'pyroute2>=0.7.3' 'netaddr>=0.10' (the collection's "
            "meta/ee-requirements.txt; see its README, 'Install from Galaxy')" % (e, sys.executable)
        ) from e


class PluginRuntimeMixin:
    """cni_plugin's look at a node, for an ActionBase."""

    def _plugin_look(self, module_args: Dict[str, Any], digest: str) -> Tuple[str, Optional[install_check.Plan]]:
        """One shell command on the node, no module run (module_utils/install_check.py):
        CURRENT when it proves cni_plugin would change nothing for `module_args`, ABSENT when
        the node certainly lacks this bundle's runtime (its MANIFEST is not there), UNKNOWN
        otherwise (then only the module can decide); and the plan (None when the arguments
        are not plain enough to tell here)."""
        plan = install_check.plan(module_args, digest)
        if plan is None:
            return install_check.UNKNOWN, None
        done = self._low_level_execute_command(plan.command())  # type: ignore[attr-defined]
        return install_check.verdict(done.get("rc", -1), done.get("stdout", ""), plan), plan


class NodeCliMixin:
    """A module's work run on the node without a module run, for an ActionBase: one command
    through the connection, its request on stdin, the module's result as its answer."""

    def _node_cli(self, cmd: str, in_data: bytes, invocation: Dict[str, Any], fallback_rc: int, what: str,
                  rest: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
        """Run a module's work on the node without a module run (`cmd`, its request on stdin), whose
        answer on stdout is {"result": the module's result, "warnings": [...]}: that result as a
        module run would return it; None where it says the module must run instead (exit
        `fallback_rc` with {"nodenet_cni_fallback": why}) or the interpreter is not there.
        The answer's other keys go into `rest`."""
        ran = self._low_level_execute_command(cmd, in_data=in_data)  # type: ignore[attr-defined]
        rc, stdout, stderr = ran.get("rc"), ran.get("stdout", ""), ran.get("stderr", "")
        try:
            answer = json.loads(stdout)
        except ValueError:
            answer = None
        if rc == fallback_rc and isinstance(answer, dict) and "nodenet_cni_fallback" in answer:
            display.vvv("%s: running the module: %s" % (what, answer["nodenet_cni_fallback"]),
                        host=self._play_context.remote_addr)  # type: ignore[attr-defined]
            return None
        if rc in (126, 127):  # the interpreter is not there: the module says so, in Ansible's words
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
            return self._as_module_result(dict(
                failed=True, rc=rc, module_stdout=stdout, module_stderr=stderr, invocation=invocation,
                msg="%s gave no result (rc %s): %s" % (what, rc, (stderr or stdout).strip()[-2000:])))
        if rest is not None:
            rest.update((k, v) for k, v in answer.items() if k not in ("result", "warnings"))
        done = dict(answer["result"], invocation=invocation)
        if answer.get("warnings"):
            done["warnings"] = list(answer["warnings"])
        return self._as_module_result(done)

    def _as_module_result(self, done: Dict[str, Any]) -> Dict[str, Any]:
        """`done` (what the module's exit_json or fail_json would print) as _execute_module returns a
        module's result: parsed the same way (a failure is the module's), internal keys removed."""
        data = self._parse_returned_data({"rc": 0, "stdout": json.dumps(done), "stderr": ""}, MODULE_PROFILE)  # type: ignore[attr-defined]
        remove_internal_keys(data)
        return data

    def _node_interpreter(self, task_vars: Dict[str, Any]) -> str:
        """The Python a module run would use on this node: ansible_python_interpreter, else the discovered one."""
        task = self._task  # type: ignore[attr-defined]
        if task.delegate_to:  # the delegated host's variables
            task_vars = (task_vars.get("ansible_delegated_vars") or {}).get(task.delegate_to) or {}
        configured = task_vars.get("ansible_python_interpreter")
        templar = self._templar  # type: ignore[attr-defined]
        if configured is not None:
            configured = templar.template(configured)
        if configured and not str(configured).startswith("auto"):
            return str(configured)
        discovered = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
        if discovered:
            return str(templar.template(discovered))
        return DEFAULT_INTERPRETER


class NodeStateMixin(NodeCliMixin):
    """cni_node_state's work in the node's plugin runtime, for an ActionBase."""

    def _state_in_runtime(self, module_args: Dict[str, Any], task_vars: Dict[str, Any], check: bool, diff: bool,
                          agent: Optional[Dict[str, Any]] = None, rest: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
        """cni_node_state's result for `module_args` (with its runtime_dir) from the node's
        plugin runtime, as a module run would return it; None where only a module run can
        give it (AnsibleModule itself would refuse the options, the runtime has no node-state
        entry point of this protocol, the interpreter is not there). With `agent` ({"port",
        "run_dir", "expect_digest"}) the same run asks the node agent its status, into
        rest["agent"] (state_cli's answer)."""
        module_params, parts, error = node_state.validate(module_args)
        if module_params is None:
            return None  # AnsibleModule's own refusal, in its words
        invocation = {"module_args": module_params}
        if error:
            return self._as_module_result(dict(failed=True, msg=error, invocation=invocation))
        request: Dict[str, Any] = {"protocol": state_cli.PROTOCOL, "params": parts, "check": check, "diff": diff}
        if agent is not None:
            request["agent"] = agent
        cmd = " ".join(
            shlex.quote(word) for word in (self._node_interpreter(task_vars), "-B", "-I", "-S", "-c", node_state.BOOTSTRAP,
                                           module_params["runtime_dir"], str(state_cli.PROTOCOL))
        )
        return self._node_cli(cmd, json.dumps(request).encode(), invocation, node_state.FALLBACK_RC,
                              "cni_node_state in the plugin runtime %s" % module_params["runtime_dir"], rest)
