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
  runtime_dir:
    description:
      - For the action plugin only (the module ignores it); the C(nodenet.cni.cni_node) role passes the C(runtime_dir)
        that M(nodenet.cni.cni_plugin) returned.
      - When set and that directory on the node holds a plugin runtime with this collection's node-state entry point
        (of the same protocol version), the action runs this module's own code there, one C(python3 -I -S) on the node
        with the options on its stdin, instead of a module run (no AnsiballZ payload). The options are checked on the
        controller first, with this module's argument specs and messages.
      - Otherwise (unset or empty, no runtime there, an older runtime without the entry point, another protocol
        version) the module runs as usual. Results, check mode, diff mode, warnings and failures are the same either way.
    type: path
    version_added: "0.2.0"
attributes:
  check_mode:
    description: Observes and compares every part and predicts C(changed), touching nothing.
    support: full
  action:
    description: An action plugin checks the options on the controller and, with O(runtime_dir), runs the work without a module run.
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
  description:
    - The parts that changed (would change, in check mode), in order.
    - >-
      In check mode on a node without pyroute2 or netaddr (cni_plugin, in check mode too, has not installed the plugin
      runtime that carries them), the parts that need them are not observed and are reported as changing, each as
      C({changed: true, predicted: true}), with a warning.
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

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs, node_state
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import state_cli

PARTS = state_cli.PARTS
ARGUMENT_SPEC = node_state.ARGUMENT_SPEC
PART_SPECS = state_cli.PART_SPECS


def main() -> None:
    module = node_libs.node_module(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, libraries=())
    params = {}
    for part in PARTS:
        if module.params[part] is not None:
            params[part], error = node_state.part_params(part, module.params[part], module.params["bin_dir"])
            if error:
                module.fail_json(msg=error)
    predicted = []
    needed = state_cli.libraries(params)
    if needed and module.check_mode:
        # --check on a node cni_plugin has not set up yet (its check mode installs nothing): the parts
        # that need pyroute2 or netaddr cannot be observed here, so they are predicted to change
        missing = node_libs.load(module.params["bin_dir"], needed).missing
        predicted = [part for part in PARTS if part in params and set(state_cli.libraries({part: None})) & set(missing)]
        for part in predicted:
            del params[part]
        if predicted:
            module.warn("check mode: %s not inspected, reported as changing: %s not importable on this node yet (the plugin "
                        "runtime cni_plugin installs carries them)" % (", ".join(predicted), " and ".join(missing)))
    elif needed:
        node_libs.require(module, module.params["bin_dir"], needed)
    try:
        specs = state_cli.check_parts(params)
    except state_cli.PartInputError as e:
        module.fail_json(msg=e.msg)
    result, warnings = state_cli.converge(params, specs, module.check_mode, module._diff)
    for warning in warnings:
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    if predicted:
        for part in predicted:
            result[part] = dict(changed=True, predicted=True)
        result["changed_parts"] = [part for part in PARTS if part in result["changed_parts"] or part in predicted]
        result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
