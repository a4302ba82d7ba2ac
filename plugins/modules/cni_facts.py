#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_facts
short_description: Gather what a node's CNI setup is, and what is wrong with it
version_added: "0.1.0"
description:
  - Returns C(ansible_facts.cni). The same data is also returned under C(cni).
  - The plugins are every executable in O(bin_dir), each asked for its C(supportedVersions) by executing its
    VERSION command (libcni's way). A plugin that does not answer is reported with its error.
  - The configs are the files of O(conf_dir) in priority order, which one is active and why (the first file in
    sorted order, as containerd picks it; an invalid first file is a failure, not skipped). For each config, its
    parse status, its lint findings and whether every plugin it names (IPAM included) supports its C(cniVersion).
  - The bridges are the ones the configs name, with their addresses, read through netlink.
  - The routes are the pod-subnet routes owned by O(route_protocol), as M(nodenet.cni.cni_routes) manages them.
  - The leases are those of every host-local C(dataDir) a config references, with the leaked ones marked.
    A lease is held when libcni's result cache in O(cache_dir) has an attachment of the same network,
    container ID and interface whose network namespace still exists. It is leaked when no such attachment is
    cached, or when the attachment's namespace is gone (deleted without DEL). Each lease carries the reason.
  - The attachments are the cached results of libcni's cache (written by containerd, CRI-O, cnitool and
    M(nodenet.cni.cni_attach)). Attachments whose namespace is gone are listed as stale.
  - Read-only. The task never reports a change.
author:
  - nodenet.cni maintainers (@nodenet)
extends_documentation_fragment:
  - nodenet.cni.node
  - nodenet.cni.node.cni_dirs
options:
  route_protocol:
    description: The routing protocol number that marks owned pod-subnet routes (as in M(nodenet.cni.cni_routes)).
    type: int
    default: 77
  route_table:
    description: The routing table holding the owned routes.
    type: int
    default: 254
  gather:
    description:
      - Which parts to gather. V(all) gathers every part.
      - V(plugins) runs VERSION of every executable in O(bin_dir). V(configs) lints each config, which also runs
        VERSION of the plugins they name.
    type: list
    elements: str
    choices: [all, plugins, configs, bridges, routes, leases, attachments]
    default: [all]
attributes:
  check_mode:
    description: The module changes nothing, so check mode gathers the same facts (plugin VERSION probes included, they are read-only).
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to diff.
    support: none
  facts:
    description: Returns C(ansible_facts.cni).
    support: full
  platform:
    description: Linux nodes; bridges and routes are those of the network namespace the module runs in.
requirements:
  - pyroute2 and netaddr for bridges, routes and config lint, from the node's python3 or else from the plugin runtime
    M(nodenet.cni.cni_plugin) installed in O(bin_dir); the other parts are gathered without them
notes:
  - A runtime that does not write libcni's result cache, or writes it elsewhere than O(cache_dir), makes its leases
    look leaked. An ADD in flight holds its lease shortly before its result is cached.
  - A part that cannot be read is reported under C(errors) and the other parts are still gathered.
seealso:
  - module: nodenet.cni.cni_attach
  - module: nodenet.cni.cni_netconf
"""

EXAMPLES = r"""
- name: Gather the node's CNI facts
  nodenet.cni.cni_facts:

- name: Show which config is active and why
  ansible.builtin.debug:
    msg: "{{ ansible_facts.cni.active }}"

- name: Fail when any lease is leaked
  ansible.builtin.assert:
    that: ansible_facts.cni.leaked_leases | length == 0
    fail_msg: "{{ ansible_facts.cni.leaked_leases | map(attribute='reason') | list }}"

- name: Only ask the plugins for their versions
  nodenet.cni.cni_facts:
    bin_dir: [/opt/cni/bin, /usr/lib/cni]
    gather: [plugins]
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: complex
  contains:
    cni:
      description:
        - The node's CNI setup. Keys of parts not gathered are absent.
        - C(plugins), C(bin_dirs) and C(not_answering) come from the V(plugins) part, and so does C(agent), the nodenet
          node agent installed in O(bin_dir) (C(null) if none) with C(running), C(pid), C(digest), C(calls) served,
          C(errors), C(refused) and C(current) (it runs the installed runtime), read from the agent serving the
          node's network namespace.
        - C(configs), C(active) and C(findings) come from V(configs).
        - C(bridges) from V(bridges), C(routes) from V(routes).
        - C(leases), C(leaked_leases) and C(data_dirs) from V(leases).
        - C(attachments) and C(stale_attachments) from V(attachments).
        - C(errors) maps a part to why it could not be read.
        - C(libraries) says where pyroute2 and netaddr came from (V(python3) for the interpreter's own, else the
          plugin runtime directory) and which are C(missing); parts that need a missing one are under C(errors).
      returned: always
      type: dict
      sample:
        plugins:
          - {"name": "bridge", "path": "/opt/cni/bin/bridge", "answers": true, "error": "",
             "supportedVersions": ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]}
        active: {"file": "/etc/cni/net.d/cni.conf", "name": "mynet", "valid": true,
                 "reason": "first of 1 config file(s) in lexical order (containerd's rule: the first file wins)"}
        configs:
          - {"path": "/etc/cni/net.d/cni.conf", "priority": 0, "valid": true, "active": true, "name": "mynet",
             "cniVersion": "0.3.1", "versions_ok": true, "findings": []}
        bridges: [{"name": "cni0", "exists": true, "addresses": ["10.13.3.254/22"], "networks": ["mynet"]}]
        routes: {"protocol": 77, "table": 254, "routes": []}
        leases:
          - {"network": "mynet", "ip": "10.13.3.8", "container_id": "probe1", "ifname": "eth0", "leaked": true,
             "reason": "netns /var/run/netns/probe1 of cached attachment /var/lib/cni/results/mynet-probe1-eth0 is gone (deleted without DEL)"}
        leaked_leases: []
        attachments: [{"network": "mynet", "container_id": "probe1", "ifname": "eth0", "netns": "/var/run/netns/probe1",
                       "netns_alive": false, "stale": true, "ips": ["10.13.3.8/22"]}]
        stale_attachments: []
        errors: {}
        libraries: {"source": "/opt/cni/bin/.nodenet-cni/0123456789abcdef", "missing": []}
cni:
  description: The same as C(ansible_facts.cni).
  returned: always
  type: dict
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import facts


ARGUMENT_SPEC = dict(
    node_libs.CNI_DIR_OPTIONS,
    route_protocol=dict(type="int", default=77),
    route_table=dict(type="int", default=254),
    gather=dict(
        type="list",
        elements="str",
        choices=["all", "plugins", "configs", "bridges", "routes", "leases", "attachments"],
        default=["all"],
    ),
)


def main() -> None:
    module = node_libs.node_module(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        libraries=(),
    )
    p = module.params
    if not 0 <= p["route_protocol"] <= 255:
        module.fail_json(msg="route_protocol must be a routing protocol number (0-255), got %d" % p["route_protocol"])
    if not 1 <= p["route_table"] <= 0xFFFFFFFF:
        module.fail_json(msg="route_table must be a routing table number (1-4294967295), got %d" % p["route_table"])
    if not p["bin_dir"]:
        module.fail_json(msg="bin_dir needs at least one directory")
    req = facts.FactsRequest(
        conf_dir=p["conf_dir"],
        bin_dirs=list(p["bin_dir"]),
        cache_dir=p["cache_dir"],
        route_protocol=p["route_protocol"],
        route_table=p["route_table"],
        gather=facts.subsets(p["gather"]),
    )
    # Without pyroute2/netaddr the parts that need them land in `errors`; the rest is still reported.
    libs = node_libs.load(req.bin_dirs)
    if libs.missing:
        module.warn(node_libs.missing_message(libs.missing, req.bin_dirs))
    cni = facts.gather(req)
    cni["libraries"] = libs.as_dict()
    if libs.missing:
        remedy = node_libs.remedy(libs.missing, req.bin_dirs)
        cni["errors"] = {part: "%s (%s)" % (why, remedy) for part, why in cni["errors"].items()}
    module.exit_json(changed=False, ansible_facts=dict(cni=cni), cni=cni)


if __name__ == "__main__":
    main()
