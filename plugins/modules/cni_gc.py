#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_gc
short_description: Free the leaked host-local leases (and stale attachments) of a node's CNI networks
version_added: "0.1.0"
description:
  - The remedy for "no IP addresses available in range set" after reboots and runtime crashes. It applies the leak
    rule of M(nodenet.cni.cni_facts) and frees what it finds, in the two steps of libcni's GC, with libcni's result cache
    (C(<cache_dir>/results), written by containerd, CRI-O, cnitool and M(nodenet.cni.cni_attach)) standing in for the
    runtime's list of live sandboxes.
  - First, every cached attachment whose network namespace is gone (deleted without DEL) is deleted with a full chain
    DEL using its cached configuration, arguments and result, as libcni's GC does. That frees its lease, its host-side
    rules and its cache entry.
  - Then every remaining leaked lease (no cached attachment of the same network, container ID and interface, or one
    whose namespace is gone) is released in the host-local C(dataDir), deciding and releasing while holding the
    dataDir's lock, the lock every host-local ADD and DEL takes. A lease younger than O(grace_seconds) is never freed,
    because an ADD in flight holds its lease a moment before the runtime caches its result.
  - With O(plugin_gc=true), the CNI GC verb then goes to the plugins of every list of cniVersion 1.1.0 or later, with the
    valid attachments sent explicitly. These are the cached attachments and the owners of every lease kept.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - nodenet.cni.node
  - nodenet.cni.node.cni_dirs
options:
  network:
    description: The networks to collect, by their C(name). Default is every valid configuration in O(conf_dir).
    type: list
    elements: str
    default: []
  grace_seconds:
    description: Leases younger than this are kept, whatever the cache says (an ADD in flight).
    type: int
    default: 60
  plugin_gc:
    description:
      - Also send the CNI GC verb to the plugins (lists of cniVersion 1.1.0 or later), with the valid attachments
        explicitly.
      - Off by default. The plugins decide after this module released the dataDir lock, so a lease that an ADD takes in
        between is not in the valid set.
    type: bool
    default: false
attributes:
  check_mode:
    description: Decides exactly as a real run and lists what it would free and why, changing nothing.
    support: full
  diff_mode:
    description: Shows each network's leases before and after.
    support: full
  platform:
    description: Linux nodes; DEL runs in the network namespace the module runs in.
requirements:
  - pyroute2 and netaddr, from the node's python3 or else from the plugin runtime M(nodenet.cni.cni_plugin) installed in
    O(bin_dir)
notes:
  - A runtime that does not write libcni's result cache, or writes it elsewhere than O(cache_dir), makes its leases look
    leaked. Point O(cache_dir) at the runtime's cache. containerd and CRI-O write C(/var/lib/cni).
seealso:
  - module: nodenet.cni.cni_facts
  - module: nodenet.cni.cni_attach
"""

EXAMPLES = r"""
- name: Show what would be freed, and why
  nodenet.cni.cni_gc:
  check_mode: true
  register: gc

- name: Free the leaked leases of podnet
  nodenet.cni.cni_gc:
    network: [podnet]
"""

RETURN = r"""
networks:
  description: The networks collected.
  returned: always
  type: list
  elements: str
deleted_attachments:
  description: Cached attachments deleted (DEL) because their namespace is gone, with C(reason).
  returned: always
  type: list
  elements: dict
freed:
  description: Leases freed (or, in check mode, that would be freed), each with C(network), C(ip), C(container_id),
    C(ifname), C(path) and C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{"network": "podnet", "ip": "10.244.0.7", "container_id": "abc", "ifname": "eth0",
            "reason": "no cached attachment of (podnet, abc, eth0)"}]
kept:
  description: Leaked leases kept because they are younger than O(grace_seconds), with C(reason).
  returned: always
  type: list
  elements: dict
leases_before:
  description: Each network's leases before, as C(<ip> <container ID> <ifname>).
  returned: always
  type: dict
leases_after:
  description: Each network's leases after (predicted in check mode).
  returned: always
  type: dict
trace:
  description: Every plugin exec of the DELs (and GCs), as M(nodenet.cni.cni_attach) reports them.
  returned: always
  type: list
  elements: dict
notes:
  description: Decisions that ran no plugin.
  returned: always
  type: list
  elements: str
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import gc
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


ARGUMENT_SPEC = dict(
    node_libs.CNI_DIR_OPTIONS,
    network=dict(type="list", elements="str", default=[]),
    grace_seconds=dict(type="int", default=60),
    plugin_gc=dict(type="bool", default=False),
)


def main() -> None:
    module = node_libs.node_module(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        libraries=(),
    )
    p = module.params
    if p["grace_seconds"] < 0:
        module.fail_json(msg="grace_seconds must be 0 or more, got %d" % p["grace_seconds"])
    if not p["bin_dir"]:
        module.fail_json(msg="bin_dir needs at least one directory")
    node_libs.require(module, p["bin_dir"])
    req = gc.GCRequest(
        conf_dir=p["conf_dir"],
        bin_dirs=list(p["bin_dir"]),
        cache_dir=p["cache_dir"],
        networks=list(p["network"]),
        grace_seconds=float(p["grace_seconds"]),
        plugin_gc=p["plugin_gc"],
    )
    try:
        outcome = gc.collect(req, check_mode=module.check_mode)
    except CNIError as e:
        module.fail_json(msg=e.msg)
    result = outcome.as_dict()
    if module._diff:
        result["diff"] = [
            dict(
                before_header="leases of %s" % name,
                after_header="leases of %s" % name,
                before="".join(line + "\n" for line in outcome.before.get(name, [])),
                after="".join(line + "\n" for line in outcome.after.get(name, [])),
            )
            for name in outcome.networks
        ]
    if outcome.errors:
        module.fail_json(msg="; ".join(outcome.errors), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
