#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_routes
short_description: Route the pod subnets of the other nodes, as an exact set
version_added: "0.1.0"
description:
  - Makes the node's routing table hold exactly the given pod-subnet routes among the routes this module owns.
  - Owned routes are tagged with a routing protocol number (O(protocol)), so the module only ever adds, replaces
    or deletes routes carrying that number and never touches a route it did not make.
  - A desired subnet already routed by a route with another protocol is an error naming the subnet, not a takeover.
  - Works through netlink (pyroute2), in the network namespace the module runs in.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - nodenet.cni.node
options:
  routes:
    description:
      - The desired routes. Each is a pod subnet and the address of the node that hosts it.
      - With O(state=present) and O(exclusive=true), owned routes not listed here are removed.
    type: list
    elements: dict
    default: []
    suboptions:
      subnet:
        description: The pod subnet in CIDR form, for example V(10.244.1.0/24). Host bits must be zero.
        type: str
        required: true
      via:
        description: The next hop, normally the other node's address on the node network. Same family as O(routes[].subnet).
        type: str
        required: true
      metric:
        description: Route priority (metric). V(0) means the kernel default.
        type: int
        default: 0
  state:
    description:
      - V(present) makes the owned routes match O(routes).
      - V(absent) removes the owned routes listed in O(routes), or every owned route when O(routes) is empty.
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description: With O(state=present), remove owned routes that are not in O(routes).
    type: bool
    default: true
  protocol:
    description: The routing protocol number that marks routes as owned by this module (1-255, not 0-4 which the kernel and tools use).
    type: int
    default: 77
  table:
    description: The routing table to manage.
    type: int
    default: 254
attributes:
  check_mode:
    description: Predicts added, replaced and removed routes without touching the routing table.
    support: full
  diff_mode:
    description: Shows the owned routes before and after.
    support: full
requirements:
  - pyroute2 and netaddr, from the node's python3 (python3-pyroute2, python3-netaddr) or else from the plugin runtime
    M(nodenet.cni.cni_plugin) installed in O(bin_dir)
notes:
  - List the routes a node has with C(ip route show proto 77).
seealso:
  - module: nodenet.cni.cni_bridge
"""

EXAMPLES = r"""
- name: Route every other node's pod subnet via that node
  nodenet.cni.cni_routes:
    routes:
      - subnet: 10.244.1.0/24
        via: 192.168.10.11
      - subnet: 10.244.2.0/24
        via: 192.168.10.12

- name: Remove every pod-subnet route this collection made
  nodenet.cni.cni_routes:
    state: absent
"""

RETURN = r"""
routes:
  description: The owned routes after the run (predicted in check mode).
  returned: always
  type: list
  elements: str
  sample: ["10.244.1.0/24 via 192.168.10.11"]
added:
  description: Routes added.
  returned: always
  type: list
  elements: str
replaced:
  description: Routes whose next hop changed.
  returned: always
  type: list
  elements: str
removed:
  description: Owned routes removed.
  returned: always
  type: list
  elements: str
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import owned_routes
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.part import PartFailed
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


def main() -> None:
    module = node_libs.node_module(
        argument_spec=owned_routes.ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    try:
        desired = owned_routes.desired_from_params(module.params)
    except CNIError as e:
        module.fail_json(msg=e.msg)

    # the agent's synchronous rtnetlink socket on pyroute2's messages (no event loop per call, no pyroute2.iproute import)
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.net.rtnl import Rtnl

    with Rtnl() as ipr:
        try:
            result = owned_routes.reconcile(ipr, desired, module.params, module.check_mode, module._diff)
        except PartFailed as e:
            module.fail_json(msg=e.msg, **e.extra)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
