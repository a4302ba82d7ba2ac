#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_netconf
short_description: Write a CNI network configuration (conf or conflist) and its dataDir, linted first
version_added: "0.1.0"
description:
  - Writes C(<conf_dir>/<priority>-<name>.conflist) (or C(.conf)) atomically with mode C(0644), after validating it
    with the same parsers the CNI plugins use and linting it against the plugins installed on the node.
  - Lint asks each installed plugin which spec versions it speaks by exec'ing its VERSION command (libcni's way),
    and flags a C(cniVersion) a plugin does not support, a plugin type missing from O(bin_dir), a default route in
    C(ipam.routes) together with C(isDefaultGateway), a gateway inside the allocation range, and overlapping ranges
    or networks. Errors fail the task when O(lint=fail); warnings are always reported.
  - Creates each host-local C(dataDir) the config names (mode C(0700)).
  - With O(exclusive=true), configs that a runtime would pick before this one (the first file in sorted order wins)
    are renamed to C(<file>.nodenet-disabled) or removed, and the diff says which.
  - The file is compared as parsed JSON, so formatting-only differences do not count as a change.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - nodenet.cni.node
options:
  name:
    description: The network name (the config's C(name); also host-local's directory under C(dataDir)).
    type: str
    required: true
  plugins:
    description:
      - The plugin chain, in order. Each item is one plugin's configuration, with at least C(type).
      - C(name) and C(cniVersion) are set from O(name) and O(cni_version).
      - Required with O(state=present).
    type: list
    elements: dict
  cni_version:
    description: The spec version of the config. Must be supported by every plugin it names.
    type: str
    default: "1.0.0"
  format:
    description: V(conflist) writes a network configuration list; V(conf) a single-plugin C(.conf) (legacy).
    type: str
    choices: [conflist, conf]
    default: conflist
  priority:
    description: The file name prefix that orders it among the conf dir's files (lower sorts first and wins).
    type: str
    default: "10"
  conf_dir:
    description: The CNI config directory.
    type: path
    default: /etc/cni/net.d
  disable_check:
    description: Set C(disableCheck) in the list (runtimes then skip CHECK).
    type: bool
    default: false
  disable_gc:
    description: Set C(disableGC) in the list (spec 1.1.0).
    type: bool
    default: false
  lint:
    description: What a lint error does. V(fail) fails before writing, V(warn) writes and warns, V(ignore) writes silently.
    type: str
    choices: [fail, warn, ignore]
    default: fail
  exclusive:
    description: Take every config that sorts before this one out of the runtime's view.
    type: bool
    default: false
  exclusive_action:
    description: With O(exclusive=true), V(rename) competing files to C(<file>.nodenet-disabled) or V(remove) them.
    type: str
    choices: [rename, remove]
    default: rename
  state:
    description: V(present) writes the file; V(absent) removes it (dataDirs and leases are left alone).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Lints and predicts C(changed) without writing files.
    support: full
  diff_mode:
    description: Shows the config file, disabled files and dataDirs before and after.
    support: full
requirements:
  - netaddr (for linting host-local ranges), from the node's python3 (python3-netaddr) or else from the plugin runtime
    M(nodenet.cni.cni_plugin) installed in O(bin_dir)
seealso:
  - module: nodenet.cni.cni_plugin
  - module: nodenet.cni.cni_facts
"""

EXAMPLES = r"""
- name: Configure the pod network (the node's pod CIDR is 10.244.1.0/24)
  nodenet.cni.cni_netconf:
    name: podnet
    cni_version: "1.0.0"
    exclusive: true
    plugins:
      - type: nodenet-bridge
        bridge: cni0
        isGateway: true
        ipMasq: true
        hairpinMode: true
        ipam:
          type: nodenet-host-local
          ranges: [[{subnet: 10.244.1.0/24}]]
          routes: [{dst: 0.0.0.0/0}]
      - type: nodenet-portmap
        capabilities: {portMappings: true}

- name: Remove it
  nodenet.cni.cni_netconf:
    name: podnet
    state: absent
"""

RETURN = r"""
path:
  description: The config file.
  returned: always
  type: str
  sample: /etc/cni/net.d/10-podnet.conflist
config:
  description: The config as written (or as it would be).
  returned: when O(state=present)
  type: dict
findings:
  description: Lint findings, each with C(level) (error/warning), C(rule), C(msg) and C(plugin) index.
  returned: when O(state=present)
  type: list
  elements: dict
disabled:
  description: Competing config files taken out of the runtime's view, as C(from -> to) (empty C(to) when removed).
  returned: always
  type: list
  elements: str
data_dirs:
  description: host-local dataDirs the config uses.
  returned: when O(state=present)
  type: list
  elements: str
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import netconf_file
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.part import PartFailed
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


def main() -> None:
    module = node_libs.node_module(
        argument_spec=netconf_file.ARGUMENT_SPEC,
        required_if=netconf_file.REQUIRED_IF,
        supports_check_mode=True,
        libraries=["netaddr"],
    )
    try:
        spec = netconf_file.spec_from_params(module.params)
    except CNIError as e:
        module.fail_json(msg=e.msg)
    try:
        result, warnings = netconf_file.reconcile(spec, module.params, module.check_mode, module._diff)
    except PartFailed as e:
        module.fail_json(msg=e.msg, **e.extra)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
