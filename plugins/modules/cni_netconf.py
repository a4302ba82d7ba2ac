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
  bin_dir:
    description: Directories searched for the plugins (the runtime's CNI_PATH).
    type: list
    elements: path
    default: [/opt/cni/bin]
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
  platform:
    description: Linux nodes; acts in the network namespace the module runs in.
    support: full
    platforms: posix
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import confdir
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import lint, netconf_file
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import SUPPORTED_VERSIONS, CNIError


def _other_networks(spec, exclude):
    nets = []
    for path in confdir.conf_files(spec.conf_dir):
        if path in exclude:
            continue
        try:
            nets.append(confdir.load_conf_file(path))
        except CNIError:
            continue
    return nets


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            plugins=dict(type="list", elements="dict"),
            cni_version=dict(type="str", default="1.0.0"),
            format=dict(type="str", choices=["conflist", "conf"], default="conflist"),
            priority=dict(type="str", default="10"),
            conf_dir=dict(type="path", default="/etc/cni/net.d"),
            bin_dir=dict(type="list", elements="path", default=["/opt/cni/bin"]),
            disable_check=dict(type="bool", default=False),
            disable_gc=dict(type="bool", default=False),
            lint=dict(type="str", choices=["fail", "warn", "ignore"], default="fail"),
            exclusive=dict(type="bool", default=False),
            exclusive_action=dict(type="str", choices=["rename", "remove"], default="rename"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["plugins"])],
        supports_check_mode=True,
    )
    node_libs.require(module, module.params["bin_dir"], ["netaddr"])
    p = module.params
    if not confdir.NAME_RE.match(p["name"]):
        module.fail_json(msg="name %r is not a valid network name (letters, digits, '_', '.', '-'; not starting with a symbol)" % p["name"])
    if p["cni_version"] not in SUPPORTED_VERSIONS:
        module.fail_json(msg="cni_version %r is not a CNI spec version (%s)" % (p["cni_version"], ", ".join(SUPPORTED_VERSIONS)))
    if not p["priority"].isalnum():
        module.fail_json(msg="priority %r must be letters/digits only (it prefixes the file name)" % p["priority"])
    spec = netconf_file.NetconfSpec(
        name=p["name"],
        cni_version=p["cni_version"],
        plugins=p["plugins"] or [],
        conf_dir=p["conf_dir"],
        priority=p["priority"],
        fmt=p["format"],
        disable_check=p["disable_check"],
        disable_gc=p["disable_gc"],
    )
    before = netconf_file.read_current(spec.path)
    result = dict(changed=False, path=spec.path, disabled=[])
    diffs = []

    if p["state"] == "absent":
        if before is not None:
            result["changed"] = True
            diffs.append(dict(before_header=spec.path, after_header=spec.path, before=_text(before), after=""))
            if not module.check_mode:
                os.unlink(spec.path)
        _exit(module, result, diffs)

    try:
        desired = netconf_file.render(spec)
        parsed = netconf_file.parse_rendered(spec, desired)
    except CNIError as e:
        module.fail_json(msg="plugins: %s" % e, path=spec.path)
    findings = lint.lint_network(parsed, p["bin_dir"])
    findings += lint.findings_about(lint.overlapping_networks([parsed] + _other_networks(spec, {spec.path})), parsed.name)
    result["findings"] = [f.as_dict() for f in findings]
    result["config"] = desired
    errors = [f for f in findings if f.level == lint.ERROR]
    if errors and p["lint"] == "fail":
        module.fail_json(msg="lint failed for plugins: %s" % "; ".join(f.msg for f in errors), findings=result["findings"], path=spec.path)
    for f in findings:
        if f.level == lint.WARNING or p["lint"] == "warn":
            module.warn("%s: %s" % (f.rule, f.msg))

    plan = netconf_file.Plan(write=before != desired)
    if p["exclusive"]:
        plan.disable = netconf_file.competitors(spec)
    result["data_dirs"] = netconf_file.data_dirs(parsed)
    plan.data_dirs = [d for d in result["data_dirs"] if not netconf_file.data_dir_ok(d)]

    if plan.write:
        diffs.append(dict(before_header=spec.path, after_header=spec.path, before=_text(before), after=netconf_file.dump(desired)))
    for path in plan.disable:
        target = "" if p["exclusive_action"] == "remove" else path + netconf_file.DISABLED_SUFFIX
        result["disabled"].append("%s -> %s" % (path, target))
        diffs.append(dict(before_header=path, after_header=target or "(removed)", before=_text(netconf_file.read_current(path)), after=""))
    for d in plan.data_dirs:
        diffs.append(dict(before_header="dataDir %s" % d, after_header="dataDir %s" % d, before="absent or not 0700\n", after="directory, mode 0700\n"))

    if not module.check_mode:
        try:
            for d in plan.data_dirs:
                netconf_file.ensure_data_dir(d)
            if plan.write:
                netconf_file.write_file(spec.path, netconf_file.dump(desired))
            for path in plan.disable:
                netconf_file.disable(path, remove=p["exclusive_action"] == "remove")
        except OSError as e:
            module.fail_json(msg="writing the config failed: %s" % e, path=spec.path)
    result["changed"] = plan.changed
    _exit(module, result, diffs)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return netconf_file.dump(value)


def _exit(module, result, diffs) -> None:
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
