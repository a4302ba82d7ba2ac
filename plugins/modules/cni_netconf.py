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

from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import lint, netconf_file
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    plugins=dict(type="list", elements="dict"),
    cni_version=dict(type="str", default="1.0.0"),
    format=dict(type="str", choices=["conflist", "conf"], default="conflist"),
    priority=dict(type="str", default="10"),
    conf_dir=dict(type="path", default="/etc/cni/net.d"),
    disable_check=dict(type="bool", default=False),
    disable_gc=dict(type="bool", default=False),
    lint=dict(type="str", choices=["fail", "warn", "ignore"], default="fail"),
    exclusive=dict(type="bool", default=False),
    exclusive_action=dict(type="str", choices=["rename", "remove"], default="rename"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


def main() -> None:
    module = node_libs.node_module(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["plugins"])],
        supports_check_mode=True,
        libraries=["netaddr"],
    )
    p = module.params
    try:
        spec = netconf_file.spec_from_params(p)
    except CNIError as e:
        module.fail_json(msg=e.msg)
    result = dict(changed=False, path=spec.path)

    # observe
    before = netconf_file.read_current(spec.path)
    desired = None
    # compare
    if p["state"] == "absent":
        plan = netconf_file.plan_absent(spec, before)
    else:
        try:
            desired, parsed = netconf_file.render_checked(spec)
        except CNIError as e:
            module.fail_json(msg=e.msg, path=spec.path)
        findings = netconf_file.lint_findings(spec, parsed, p["bin_dir"])
        result.update(findings=[f.as_dict() for f in findings], config=desired, data_dirs=netconf_file.data_dirs(parsed))
        report_lint(module, findings, p["lint"], result)
        plan = netconf_file.plan_present(spec, before, desired, parsed, p["exclusive"], p["exclusive_action"] == "remove")
    result.update(changed=plan.changed, disabled=plan.disabled())
    if module._diff:
        result["diff"] = netconf_file.plan_diff(spec, plan, before, desired)
    # act
    if plan.changed and not module.check_mode:
        try:
            netconf_file.apply_plan(spec, plan, desired)
        except OSError as e:
            module.fail_json(msg="writing the config failed: %s" % e, path=spec.path)
    module.exit_json(**result)


def report_lint(module, findings, mode, result) -> None:
    """lint=fail stops before anything is written; warnings always show, errors too with lint=warn."""
    errors = [f for f in findings if f.level == lint.ERROR]
    if errors and mode == "fail":
        module.fail_json(msg="lint failed for plugins: %s" % "; ".join(f.msg for f in errors), findings=result["findings"], path=result["path"])
    for f in findings:
        if f.level == lint.WARNING or mode == "warn":
            module.warn("%s: %s" % (f.rule, f.msg))


if __name__ == "__main__":
    main()
