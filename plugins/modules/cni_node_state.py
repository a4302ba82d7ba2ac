#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_node_state
short_description: Reconcile a node's pod subnets file, network config, bridge, routes and boot files in one step
version_added: "0.2.0"
description:
  - Does what M(nodenet.cni.cni_netconf), M(nodenet.cni.cni_bridge), M(nodenet.cni.cni_routes) and
    M(nodenet.cni.cni_boot) do, in that order, in one module run on the node, with the same back-end code, so a
    roll-out pays for one task per node instead of four. This is what the C(nodenet.cni.cni_node) role uses.
  - Each part is optional; a part left out is not looked at. Each part takes the options of its module, as a dict
    (O(pod_subnets), the file that keeps the node's pod subnets, has no module of its own).
  - Every part's options are checked before anything is observed or written, so bad input fails naming the option
    (for example C(bridge.mtu)) and changes nothing. Then each part is observed, compared with its desired state and,
    unless in check mode, changed; a part that fails stops the parts after it.
  - C(changed) is true when some part changed; each part's own result is returned under its name.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - nodenet.cni.node
options:
  pod_subnets:
    description:
      - The node's persisted pod subnets, one CIDR per line, which the C(nodenet.cni.cni_node) role reads before it
        assigns subnets, so a node keeps its subnets for good. Written atomically (mode 0644) only when it differs.
      - Done first, before the other parts.
    type: dict
    suboptions:
      path:
        description: The file, an absolute path (the role's is C(/etc/nodenet/pod_subnet)).
        type: path
        required: true
      subnets:
        description: The node's pod subnets, at most one per family, in order; at least one when O(pod_subnets.state=present).
        type: list
        elements: str
        default: []
      state:
        description: V(absent) removes the file.
        type: str
        choices: [present, absent]
        default: present
  netconf:
    description:
      - The network config file, with the options of M(nodenet.cni.cni_netconf) (O(bin_dir) is this module's),
        for example C(name), C(plugins), C(cni_version), C(priority), C(conf_dir), C(exclusive), C(lint), C(state).
      - Lint warnings are shown as warnings of this task.
    type: dict
  bridge:
    description:
      - The pod bridge and the forwarding sysctls, with the options of M(nodenet.cni.cni_bridge), for example
        C(name), C(addresses), C(mtu), C(force_address), C(state).
    type: dict
  routes:
    description:
      - The owned pod-subnet routes, with the options of M(nodenet.cni.cni_routes), for example C(routes)
        (each C(subnet), C(via), C(metric)), C(protocol), C(exclusive), C(state).
    type: dict
  boot:
    description:
      - The boot persistence files, with the options of M(nodenet.cni.cni_boot), for example C(sysctls),
        C(restore), C(command), C(systemd_dir), C(unit), C(state).
      - Needs nothing but the node's python3; with only this part, pyroute2 and netaddr are not loaded.
    type: dict
attributes:
  check_mode:
    description: Observes and compares every part and predicts C(changed), touching nothing.
    support: full
  diff_mode:
    description: >-
      One diff entry per changed part: the netconf file (and each competitor or dataDir it changes), the bridge,
      the owned routes, each boot file.
    support: full
requirements:
  - pyroute2 and netaddr for the bridge and routes parts (netaddr for netconf), from the node's python3 or else from
    the plugin runtime M(nodenet.cni.cni_plugin) installed in O(bin_dir)
seealso:
  - module: nodenet.cni.cni_netconf
  - module: nodenet.cni.cni_bridge
  - module: nodenet.cni.cni_routes
  - module: nodenet.cni.cni_boot
"""

EXAMPLES = r"""
- name: Converge the node's pod network in one task
  nodenet.cni.cni_node_state:
    netconf:
      name: podnet
      exclusive: true
      plugins:
        - type: nodenet-bridge
          bridge: cni0
          isGateway: true
          ipMasq: true
          ipam:
            type: nodenet-host-local
            ranges: [[{subnet: 10.244.1.0/24}]]
    bridge:
      name: cni0
      addresses: [10.244.1.1/24]
      force_address: true
    routes:
      routes:
        - subnet: 10.244.2.0/24
          via: 192.168.10.12
    boot:
      sysctls:
        net.ipv4.ip_forward: 1
      restore:
        bridge: {name: cni0, addresses: [10.244.1.1/24], mtu: null}
        routes: {protocol: 77, table: 254, routes: [{subnet: 10.244.2.0/24, via: 192.168.10.12}]}
      command: [/usr/bin/python3, /opt/cni/bin/.nodenet-cni/boot.py, /etc/nodenet/boot.json]
  register: node_state

- name: Probe only when the running network changed (not just its boot files)
  ansible.builtin.debug:
    msg: "changed: {{ node_state.changed_parts }}"
  when: node_state.changed_parts | difference(['boot']) | length > 0
"""

RETURN = r"""
pod_subnets:
  description: C(changed), C(path), C(subnets) and why the file changed (C(reasons), for example C(missing) or C(content)).
  returned: when O(pod_subnets) is given
  type: dict
  sample: {changed: true, path: /etc/nodenet/pod_subnet, subnets: [10.244.1.0/24, "fd00:10:244:1::/64"], reasons: [missing]}
changed_parts:
  description: The parts that changed (would change, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [bridge, routes]
netconf:
  description: The result M(nodenet.cni.cni_netconf) returns (C(changed), C(path), C(config), C(findings), C(disabled), C(data_dirs)).
  returned: when O(netconf) is given
  type: dict
bridge:
  description: The result M(nodenet.cni.cni_bridge) returns (C(changed), C(bridge)).
  returned: when O(bridge) is given
  type: dict
routes:
  description: The result M(nodenet.cni.cni_routes) returns (C(changed), C(routes), C(added), C(replaced), C(removed)).
  returned: when O(routes) is given
  type: dict
boot:
  description: The result M(nodenet.cni.cni_boot) returns (C(changed), C(files)).
  returned: when O(boot) is given
  type: dict
"""

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import boot_files, bridge_state, netconf_file, owned_routes, pod_subnet_file
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.part import PartFailed
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

PARTS = ("pod_subnets", "netconf", "bridge", "routes", "boot")
ARGUMENT_SPEC = dict({part: dict(type="dict") for part in PARTS}, pod_subnets=dict(type="dict", options=pod_subnet_file.ARGUMENT_SPEC))
PART_SPECS = dict(
    pod_subnets=(pod_subnet_file.ARGUMENT_SPEC, []),
    netconf=(netconf_file.ARGUMENT_SPEC, netconf_file.REQUIRED_IF),
    bridge=(bridge_state.ARGUMENT_SPEC, []),
    routes=(owned_routes.ARGUMENT_SPEC, []),
    boot=(boot_files.ARGUMENT_SPEC, boot_files.REQUIRED_IF),
)


def part_params(module, part):
    """A part's options validated by its module's own argument spec; fails naming `<part>.<option>`."""
    spec, required_if = PART_SPECS[part]
    result = ArgumentSpecValidator(spec, required_if=required_if).validate(module.params[part])
    if result.error_messages:
        messages = [("unsupported options: " if isinstance(e, UnsupportedError) else "") + e.msg for e in result.errors.errors]
        module.fail_json(msg="%s: %s" % (part, "; ".join(messages)))
    params = result.validated_parameters
    params["bin_dir"] = module.params["bin_dir"]
    return params


def check_part(module, part, params):
    """The part's spec, from its back-end's own checks (CNIError/BootFilesError name the option)."""
    try:
        if part == "pod_subnets":
            return pod_subnet_file.desired_from_params(params)
        if part == "netconf":
            return netconf_file.spec_from_params(params)
        if part == "bridge":
            return bridge_state.spec_from_params(params)
        if part == "routes":
            return owned_routes.desired_from_params(params)
        return boot_files.BootSpec.from_params(params)
    except (CNIError, boot_files.BootFilesError, pod_subnet_file.PodSubnetsError) as e:
        module.fail_json(msg="%s.%s" % (part, e.msg))


def main() -> None:
    module = node_libs.node_module(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, libraries=())
    wanted = [part for part in PARTS if module.params[part] is not None]
    params = {part: part_params(module, part) for part in wanted}
    netlink = "bridge" in params or "routes" in params
    if netlink or "netconf" in params:
        node_libs.require(module, module.params["bin_dir"], node_libs.LIBRARIES if netlink else ["netaddr"])
    specs = {part: check_part(module, part, params[part]) for part in wanted}

    check, diff = module.check_mode, module._diff
    result = dict(changed=False, changed_parts=[])
    diffs = []

    def done(part, res):
        part_diff = res.pop("diff", None)
        if part_diff:
            diffs.extend(part_diff if isinstance(part_diff, list) else [part_diff])
        result[part] = res
        if res["changed"]:
            result["changed_parts"].append(part)

    try:
        if "pod_subnets" in specs:
            done("pod_subnets", pod_subnet_file.reconcile(specs["pod_subnets"], check, diff))
        if "netconf" in specs:
            res, warnings = netconf_file.reconcile(specs["netconf"], params["netconf"], check, diff)
            for warning in warnings:
                module.warn("netconf: %s" % warning)
            done("netconf", res)
        if netlink:
            # the agent's synchronous rtnetlink socket on pyroute2's messages (no event loop per call, no pyroute2.iproute import)
            from ansible_collections.nodenet.cni.plugins.module_utils.cni.net.rtnl import Rtnl

            with Rtnl() as ipr:
                if "bridge" in specs:
                    done("bridge", bridge_state.reconcile(ipr, specs["bridge"], params["bridge"]["state"] == "present", check, diff))
                if "routes" in specs:
                    done("routes", owned_routes.reconcile(ipr, specs["routes"], params["routes"], check, diff))
        if "boot" in specs:
            try:
                done("boot", boot_files.reconcile(specs["boot"], check, diff))
            except boot_files.BootFilesError as e:
                raise PartFailed(e.msg, names_option=True) from e
    except PartFailed as e:
        failed = next(part for part in PARTS if part in specs and part not in result)
        result.pop("changed")
        module.fail_json(msg=e.in_part(failed), changed=bool(result["changed_parts"]), failed_part=failed, **dict(result, **{failed: e.extra}))

    result["changed"] = bool(result["changed_parts"])
    if diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
