# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller half of nodenet.cni.cni_plugin: build the plugin bundle, ship it.

The node must not need pip, a checkout or network access: the bundle (this
collection's cni package plus pyroute2 and netaddr, from the controller's
Python) is built here once per run.

A node that already has this runtime gets neither the bundle nor a module run
(PluginRuntimeMixin's look). A node that needs it gets it without a module
run: the task's options are checked here with the module's own argument spec,
and one `python3 -B -I -S` on the node reads the bundle from its stdin and
installs it with the bundle's own installer (module_utils/install_boot.py,
cni/node/install_cli.py: the module's code, result, failures and diff).
Under --check, where the look cannot tell, or where the node cannot take that
way (an older Python, a damaged transfer), the module runs as always, with
the bundle transferred into the task's remote tmp dir when it asks for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible_collections.nodenet.cni.plugins.module_utils import install_boot, install_check
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import install_cli, installer
from ansible_collections.nodenet.cni.plugins.plugin_utils import node_actions

MODULE = "nodenet.cni.cni_plugin"


class ActionModule(node_actions.PluginRuntimeMixin, node_actions.NodeCliMixin, ActionBase):

    TRANSFERS_FILES = False  # only _ship_bundle does, and makes the remote tmp dir then (a current node, a first install: none)
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        module_args = self._task.args.copy()
        try:
            for option in node_actions.PLUGIN_INTERNAL_OPTIONS:
                if option in module_args:
                    raise AnsibleActionFail("%s is set by the nodenet.cni.cni_plugin action plugin; do not pass it" % option)
            if module_args.get("state", "present") == "present":
                bundle = node_actions.plugin_bundle()
                module_args["digest"] = bundle["digest"]
                seen = self._look(module_args, bundle["digest"])
                if seen == install_check.CURRENT:
                    return self._up_to_date(result, module_args, bundle["digest"])
                if self._play_context.check_mode or seen == install_check.UNKNOWN:
                    # first without the bundle: an up-to-date node never receives it
                    first = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
                    if not first.get("bundle_needed"):
                        result.update(first)
                        return result
                # (a node without this runtime needs the bundle anyway: no module run to ask)
                done = self._install_from_stdin(module_args, bundle, task_vars)
                if done is not None:
                    result.update(done)
                    return result
                module_args.update(self._ship_bundle(bundle))
            result.update(self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars))
        except AnsibleActionFail as e:
            result.update(e.result)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _look(self, module_args, digest):
        """PluginRuntimeMixin._plugin_look's verdict (CURRENT, ABSENT or UNKNOWN: then the
        module decides, as always). Under --diff the module runs (it shows the installed state)."""
        if self._task.diff:
            return install_check.UNKNOWN
        return self._plugin_look(module_args, digest)[0]

    def _up_to_date(self, result, module_args, digest):
        """The module's no-change result, told by _look without a module run."""
        result.update(install_check.plan(module_args, digest).result)
        return result

    def _install_from_stdin(self, module_args, bundle, task_vars):
        """The module's result of installing `bundle` on the node, without a module run
        (install_boot: the bundle's own installer, fed on stdin); None where the module must
        run instead (AnsibleModule itself would refuse the options, a path option the node's
        environment would expand, install_boot's fallback, no interpreter)."""
        # (a module run before this one added its _ansible_* keys to module_args)
        module_args = {k: v for k, v in module_args.items() if not k.startswith("_ansible_")}
        checked = ArgumentSpecValidator(install_cli.ARGUMENT_SPEC).validate(module_args)
        if checked.error_messages:
            return None  # AnsibleModule's own refusal, in its words
        params = checked.validated_parameters
        if any(("~" in str(module_args.get(option)) or "$" in str(module_args.get(option)))
               for option in ("bin_dir", "lib_dir", "interpreter", "agent_run_dir") if module_args.get(option) is not None):
            return None  # (type=path expands ~ and $VARS: the module does that on the node)
        request = {"protocol": install_cli.PROTOCOL, "params": params, "diff": bool(self._task.diff)}
        with open(self._bundle_file(bundle), "rb") as f:
            data = f.read()
        boot = self._boot_source()
        stdin = b"%d\n" % len(boot) + boot + json.dumps(request).encode() + b"\n" + data
        cmd = " ".join(shlex.quote(word) for word in (self._node_interpreter(task_vars), "-B", "-I", "-S", "-c", install_boot.LOADER))
        return self._node_cli(cmd, stdin, {"module_args": params}, install_boot.FALLBACK_RC, "cni_plugin's install from the bundle on stdin")

    @staticmethod
    def _boot_source():
        with open(install_boot.__file__, "rb") as f:
            return f.read()

    def _ship_bundle(self, bundle):
        """Build the bundle (once per run) and put it in the remote tmp dir."""
        local = self._bundle_file(bundle)
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "nodenet-cni-bundle.tar.gz")
        self._transfer_file(local, remote)
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        return {"src": remote, "digest": bundle["digest"]}

    def _bundle_file(self, bundle):
        """The bundle's tar.gz on the controller, built once per run."""
        local = bundle["path"]
        if not os.path.isfile(local):
            # the forks of a first converge all get here at once: one builds, the others wait for it
            with open(local + ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not os.path.isfile(local):
                    files = node_actions.bundle_sources()
                    if installer.bundle_digest(files) != bundle["digest"]:
                        raise AnsibleActionFail("the collection's plugin sources changed during this run; run it again")
                    self._build_bundle(files, local)
        return local

    @staticmethod
    def _build_bundle(files, local):
        """The sources and their pycs for this interpreter (compiled here once, so that a node
        with the same cache tag skips compileall), at gzip level 6: the pycs compress less
        well than sources, and the bundle goes to every node."""
        fd, staging = tempfile.mkstemp(prefix=".nodenet-cni-bundle-", suffix=".tar.gz", dir=os.path.dirname(local))
        os.close(fd)
        try:
            installer.write_bundle(files, staging, pycs=installer.compile_sources(files), compresslevel=6)
            os.replace(staging, local)  # atomic: a fork reading it sees all or nothing
        except BaseException:
            os.unlink(staging)
            raise
