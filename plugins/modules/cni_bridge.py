#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_bridge
short_description: Ensure the node's pod bridge (cni0) and the forwarding sysctls it needs
version_added: "0.1.0"
description:
  - Makes the pod bridge exist, be a bridge, be up, and carry the given MTU, gateway addresses, promiscuous mode
    and VLAN filtering, through netlink (pyroute2), before any pod exists.
  - Reconciles drift. A different IPv4 address, or an overlapping IPv6 address, on the bridge is a conflict;
    it is replaced only with O(force_address=true), otherwise the module fails naming the conflicting address
    (the same rule the bridge CNI plugin applies on every pod ADD).
  - Also sets the node sysctls the bridge needs (IPv4 and IPv6 forwarding) declaratively.
  - Works in the network namespace the module runs in.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - nodenet.cni.node
options:
  name:
    description: The bridge name, as in the netconf's C(bridge) key.
    type: str
    default: cni0
  state:
    description: V(present) ensures the bridge; V(absent) deletes it (pods on it lose their network).
    type: str
    choices: [present, absent]
    default: present
  addresses:
    description:
      - Gateway addresses in CIDR form, for example V(10.244.1.1/24) and V(fd00:10:244:1::1/64). At most one IPv4.
      - Addresses not conflicting with these are left alone.
    type: list
    elements: str
    default: []
  mtu:
    description: The bridge MTU. Unset leaves the current MTU (the kernel default at creation).
    type: int
  promisc:
    description: Turn promiscuous mode on. V(false) leaves it as it is (the plugin never turns it off either).
    type: bool
    default: false
  vlan_filtering:
    description: Set VLAN filtering on or off. Unset leaves it as it is.
    type: bool
  force_address:
    description: Replace conflicting addresses instead of failing.
    type: bool
    default: false
  ip_forward:
    description: Desired C(net.ipv4.ip_forward). Omitted means V(true); V(null) leaves it alone.
    type: bool
    default: true
  ipv6_forwarding:
    description: Desired C(net.ipv6.conf.all.forwarding). Unset means V(true) when O(addresses) has an IPv6 address, else leave alone.
    type: bool
attributes:
  check_mode:
    description: Predicts the bridge state and C(changed) without touching the link.
    support: full
  diff_mode:
    description: Shows the normalised bridge state before and after.
    support: full
requirements:
  - pyroute2 and netaddr, from the node's python3 (python3-pyroute2, python3-netaddr) or else from the plugin runtime
    M(nodenet.cni.cni_plugin) installed in O(bin_dir)
seealso:
  - module: nodenet.cni.cni_routes
  - module: nodenet.cni.cni_netconf
"""

EXAMPLES = r"""
- name: Ensure cni0 with the node's pod gateway
  nodenet.cni.cni_bridge:
    name: cni0
    addresses: [10.244.1.1/24]
    mtu: 1450

- name: Move the bridge to a new pod CIDR
  nodenet.cni.cni_bridge:
    addresses: [10.244.7.1/24]
    force_address: true

- name: Remove the bridge
  nodenet.cni.cni_bridge:
    state: absent
"""

RETURN = r"""
bridge:
  description: The bridge state after the run (predicted in check mode).
  returned: always
  type: dict
  contains:
    exists:
      description: Whether the link exists.
      type: bool
    kind:
      description: The link kind.
      type: str
    up:
      description: Administratively up.
      type: bool
    mtu:
      description: MTU.
      type: int
    mac:
      description: MAC address (empty when predicted).
      type: str
    promisc:
      description: Promiscuous mode.
      type: bool
    vlan_filtering:
      description: VLAN filtering.
      type: bool
    addresses:
      description: Global addresses in CIDR form.
      type: list
      elements: str
    ip_forward:
      description: net.ipv4.ip_forward is 1.
      type: bool
    ipv6_forwarding:
      description: net.ipv6.conf.all.forwarding is 1.
      type: bool
  sample: {"exists": true, "kind": "bridge", "up": true, "mtu": 1500, "addresses": ["10.244.1.1/24"]}
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import bridge_state
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.part import PartFailed
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


def main() -> None:
    module = node_libs.node_module(
        argument_spec=bridge_state.ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    try:
        spec = bridge_state.spec_from_params(module.params)
    except CNIError as e:
        module.fail_json(msg=e.msg)

    # the agent's synchronous rtnetlink socket on pyroute2's messages (no event loop per call, no pyroute2.iproute import)
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.net.rtnl import Rtnl

    with Rtnl() as ipr:
        try:
            result = bridge_state.reconcile(ipr, spec, module.params["state"] == "present", module.check_mode, module._diff)
        except PartFailed as e:
            module.fail_json(msg=e.msg, **e.extra)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
