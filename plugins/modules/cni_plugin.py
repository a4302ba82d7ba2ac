#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_plugin
short_description: Install the nodenet.cni Python CNI plugins into a CNI bin dir
version_added: 0.1.0
description:
  - Installs the C(bridge), C(host-local), C(loopback) and C(portmap) CNI plugins of this
    collection into a CNI bin directory, as small launcher scripts that run on the node's own
    Python 3 (3.9 or newer) with nothing else installed by hand.
  - The action plugin of the same name builds the plugin runtime (this collection's C(cni)
    package plus the pure-Python libraries pyroute2 and netaddr) on the controller, once per run,
    and sends it to a node that needs it. It is unpacked into a content-addressed directory under
    O(lib_dir), and one launcher per plugin name is written into O(bin_dir). Every write is
    atomic, so a container runtime exec'ing a plugin during an upgrade sees the old or the new
    plugin, never half of either.
  - A node that already has this runtime gets neither the bundle nor a module run (one shell
    command proves it current). A node that needs it gets the bundle on the stdin of one
    C(python3 -B -I -S), which installs it with the bundle's own copy of this module's code (same
    result, failures and diff); under C(--check), with a Python older than 3.9 on the node, or
    when the transfer is damaged, the bundle is copied to the node and this module installs it.
  - By default the launchers are named with O(prefix) (C(nodenet-bridge), C(nodenet-host-local),
    ...), so an existing Go plugin set in the same directory is never overwritten. With
    O(reference_names=true) they are also installed as C(bridge), C(host-local), C(loopback) and
    C(portmap), so an unchanged netconf uses them.
  - The launchers are thin bash shims. Each sends the call to the node agent C(<prefix>agent)
    (installed with O(agent=true)) listening on C(127.0.0.1:<agent_port>) in the network namespace
    the runtime exec'd the shim in, and relays its answer; when no agent listens there, the shim
    runs the plugin in-process on O(interpreter). The agent is started by the C(cni_node) role
    (systemd on real nodes, a supervisor on lab nodes), not by this module.
  - C(changed) is computed from the normalised installed state (launcher contents and modes,
    runtime directories) before and after, so a second run with the same input reports no change.
author:
  - nodenet.cni maintainers (@nodenet)
options:
  bin_dir:
    description:
      - The CNI bin directories (the runtime's C(CNI_PATH)), for example V([/opt/cni/bin]). The plugins are installed
        into (or removed from) the first, where a runtime looks first; the others are not touched.
      - A list like every module's O(bin_dir) in this collection, so one C(module_defaults) value serves them all; a
        single path (a string) is still accepted.
      - Must be absolute paths. The first is created (mode C(0755)) when missing and O(state=present).
    type: list
    elements: path
    required: true
  lib_dir:
    description:
      - Where the plugin runtime is unpacked, one sub-directory per bundle digest.
      - Defaults to C(<bin_dir>/.nodenet-cni).
      - Use one O(lib_dir) per O(bin_dir); unused runtime directories are removed.
    type: path
  plugins:
    description:
      - The plugins to install or remove, by their canonical name.
    type: list
    elements: str
    choices: [bridge, host-local, loopback, portmap]
    default: [bridge, host-local, loopback, portmap]
  prefix:
    description:
      - 'Prefix of the installed names, C(<prefix><plugin>). A netconf then says C("type": "nodenet-bridge").'
      - Must be non-empty and contain only letters, digits, C(.), C(_) and C(-); use
        O(reference_names) to install under the plain plugin names.
    type: str
    default: nodenet-
  reference_names:
    description:
      - Also install each plugin under its reference name (C(bridge), C(host-local), ...), the name
        the Go reference plugins use, so an existing netconf works unchanged.
      - A file under such a name that was not installed by this module (for example a Go plugin) is
        never overwritten unless O(force=true).
    type: bool
    default: false
  force:
    description:
      - Overwrite files under the installed names that were not installed by this module.
      - With O(state=absent), has no effect; foreign files are never removed.
    type: bool
    default: false
  interpreter:
    description:
      - The Python interpreter on the node that runs the plugins (the launchers' C(#!) line).
      - Must exist and be Python 3.9 or newer; the module runs it once to check.
    type: path
    default: /usr/bin/python3
  agent:
    description:
      - Also install the node agent launcher C(<bin_dir>/<prefix>agent). Run in the foreground, it
        serves the shims exec'd in the network namespace it was started in and prints C(ready).
    type: bool
    default: true
  agent_port:
    description:
      - The loopback TCP port the agent listens on and the shims connect to. A privileged port
        (below 1024), so only root can listen on it.
    type: int
    default: 1021
  agent_run_dir:
    description:
      - Directory (mode C(0700)) of the agent's per-instance token files, which prove to the agent
        that a caller is root.
    type: path
    default: /run/nodenet-cni
  state:
    description:
      - V(present) installs the plugins and their runtime.
      - V(absent) removes the launchers this module installed under the selected names, and every
        runtime directory no launcher in O(bin_dir) uses any more.
    type: str
    choices: [present, absent]
    default: present
  src:
    description:
      - Internal, set by the action plugin; do not set it yourself.
      - Path on the node of the plugin bundle the action plugin transferred (where it runs this module rather than
        installing from the bundle on stdin).
      - Without it the module installs nothing; if the installed plugins already match O(digest) it reports no change,
        otherwise it returns RV(bundle_needed) and the action plugin sends the bundle. So a node that is up to date
        never receives the bundle.
    type: path
  digest:
    description:
      - Internal, set by the action plugin; do not set it yourself.
      - SHA-256 digest of the bundle (in O(src)), checked before anything is installed.
    type: str
attributes:
  action:
    description:
      - The action plugin builds the plugin bundle on the controller and transfers it.
      - It first looks at the node with one shell command (C(find), C(sha256sum), C(cat)) and judges the listing by
        this module's rules; a node it proves up to date gets no module run (the same no-change result), anything
        else (a drift, a missing tool, C(--diff)) gets the module as before.
    support: full
  check_mode:
    description: Predicts C(changed) without writing anything.
    support: full
  diff_mode:
    description: Shows the installed launchers and runtime directories before and after.
    support: full
  platform:
    description: Linux nodes with network namespaces.
    support: full
    platforms: posix
notes:
  - The installed plugins, like the Go ones, need root to run (netlink, network namespaces).
  - The in-process fallback runs O(interpreter) with C(-I -S) (isolated mode, no site), so
    C(PYTHON*) environment variables of the runtime do not change it.
seealso:
  - name: CNI specification
    description: How a container runtime finds and execs CNI plugins.
    link: https://github.com/containernetworking/cni/blob/main/SPEC.md
requirements:
  - Python 3.9 or newer on the node at O(interpreter).
"""

EXAMPLES = r"""
- name: Install the plugins next to an existing Go plugin set (nodenet-bridge, ...)
  nodenet.cni.cni_plugin:
    bin_dir: /opt/cni/bin

- name: Also install them under the reference names, replacing the Go plugins
  nodenet.cni.cni_plugin:
    bin_dir: /opt/cni/bin
    reference_names: true
    force: true

- name: Install only bridge and host-local, run by a specific interpreter
  nodenet.cni.cni_plugin:
    bin_dir: /opt/cni/bin
    plugins:
      - bridge
      - host-local
    interpreter: /usr/bin/python3.11

- name: Remove the plugins this module installed
  nodenet.cni.cni_plugin:
    bin_dir: /opt/cni/bin
    reference_names: true
    state: absent
"""

RETURN = r"""
plugins:
  description: Installed launchers, by installed name.
  returned: when O(state=present)
  type: dict
  contains:
    plugin:
      description: The canonical plugin the launcher runs.
      type: str
    path:
      description: Absolute path of the launcher.
      type: str
  sample:
    nodenet-bridge:
      plugin: bridge
      path: /opt/cni/bin/nodenet-bridge
    nodenet-loopback:
      plugin: loopback
      path: /opt/cni/bin/nodenet-loopback
agent:
  description: Absolute path of the installed agent launcher.
  returned: when O(state=present) and O(agent=true)
  type: str
  sample: /opt/cni/bin/nodenet-agent
runtime_dir:
  description: The directory holding the plugin runtime the launchers use.
  returned: when O(state=present)
  type: str
  sample: /opt/cni/bin/.nodenet-cni/3f1c0a9e5b7d2c44
digest:
  description: SHA-256 digest of the installed bundle.
  returned: when O(state=present)
  type: str
  sample: 3f1c0a9e5b7d2c44b0e5a6f1d0e7c9b8a4f2e1d3c5b7a9f0e2d4c6b8a0f1e3d5
bundle_needed:
  description: Internal, for the action plugin; the plugins do not match O(digest) and O(src) was not given.
  returned: when O(state=present) without O(src) and something would change
  type: bool
  sample: true
  version_added: "0.2.0"
bytecode:
  description:
    - How the runtime this run unpacked was byte-compiled. V(bundled) when the bundle's pycs, compiled on the
      controller, suit O(interpreter) (same cache tag and magic number); V(compiled on the node) otherwise.
  returned: when this run unpacked a runtime
  type: str
  sample: bundled
  version_added: "0.2.0"
lib_dir:
  description: The effective O(lib_dir).
  returned: always
  type: str
  sample: /opt/cni/bin/.nodenet-cni
removed:
  description: Launchers removed (or, in check mode, that would be removed).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: [/opt/cni/bin/nodenet-bridge]
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import install_cli


def main() -> None:
    # (the work is install_cli.install, which a first install runs without a module run: the action plugin)
    module = AnsibleModule(argument_spec=install_cli.ARGUMENT_SPEC, supports_check_mode=True)
    result = install_cli.install(module.params, module.check_mode, module._diff)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
