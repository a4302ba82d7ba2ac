#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_node_check
short_description: Tell whether a node already matches (plugins, node agent, pod network state), and which part does not
version_added: "0.2.0"
description:
  - Looks, without changing anything, whether the node is what M(nodenet.cni.cni_plugin), the node agent and
    M(nodenet.cni.cni_node_state) would leave it, each part told the way that task tells it, in order; the first part
    that is not current ends the check and is named in RV(not_current).
  - C(plugin) - the plugin runtime, its launchers and the lib dir are exactly what M(nodenet.cni.cni_plugin) installs for
    O(plugin) with this controller's plugin bundle (the action plugin's own no-module look, one shell command on the
    node judged by the module's rules). Current only on positive evidence; a node without this runtime answers at
    once.
  - C(agent) (O(agent)) - the node agent answers C(--status --expect-digest <digest>) for that runtime, the test of the
    C(nodenet.cni.cni_node) role's agent tasks.
  - C(state) (O(state)) - M(nodenet.cni.cni_node_state) in check mode, run in that plugin runtime on the node (the path
    its action plugin takes) - current when no part would change and none would fail.
  - The C(nodenet.cni.cni_node) role runs it before its install, agent and converge tasks and skips them as one where the
    node is current. An operator can run it to ask whether a node is current, and which part is not.
  - This module is an action plugin; everything runs through the connection (shell commands and the node's python3),
    nothing is written on the node.
author:
  - nodenet.cni maintainers (@nodenet)
options:
  plugin:
    description:
      - The options of M(nodenet.cni.cni_plugin) as the install task gives them (for example C(bin_dir), C(prefix),
        C(reference_names), C(interpreter), C(agent), C(agent_port), C(agent_run_dir)); C(state) must be V(present).
      - Options the look cannot judge itself (for example a C(bin_dir) with shell characters) make the node not current,
        as they make M(nodenet.cni.cni_plugin) run its module.
    type: dict
    required: true
  agent:
    description:
      - Check that the node agent serves the plugin runtime (its launcher from O(plugin), C(--status --expect-digest)).
      - Default is O(plugin)'s C(agent) (M(nodenet.cni.cni_plugin)'s default V(true)). Set V(false) where nothing keeps an
        agent running.
    type: bool
  state:
    description:
      - The options of M(nodenet.cni.cni_node_state) (its parts C(pod_subnets), C(netconf), C(bridge), C(routes), C(boot),
        and C(bin_dir)) but C(runtime_dir), which is the plugin runtime this check found. Left out, the node state is not
        checked.
    type: dict
attributes:
  check_mode:
    support: full
    description: It never changes anything; under C(--check) it runs the same way.
  diff_mode:
    support: none
    description:
      - Nothing to show. The C(nodenet.cni.cni_node) role does not use it under C(--diff), so that the install and
        converge tasks show their diffs.
  platform:
    platforms: posix
    support: full
    description: Nodes with a POSIX shell, coreutils and findutils, and python3 for the node state part.
notes:
  - The controller needs the collection's controller requirements (pyroute2 and netaddr, the plugin bundle's
    libraries), as for M(nodenet.cni.cni_plugin).
  - It stops at the first part that is not current, so the parts after it are not looked at.
seealso:
  - module: nodenet.cni.cni_plugin
  - module: nodenet.cni.cni_node_state
"""

EXAMPLES = r"""
- name: Is the node current?
  nodenet.cni.cni_node_check:
    plugin:
      bin_dir: [/opt/cni/bin]
      prefix: nodenet-
    state:
      netconf:
        name: podnet
        plugins:
          - type: nodenet-bridge
            bridge: cni0
            isGateway: true
            ipam:
              type: nodenet-host-local
              ranges: [[{subnet: 10.244.1.0/24}]]
      bridge:
        name: cni0
        addresses: [10.244.1.1/24]
  register: node_check

- name: Say which part is not
  ansible.builtin.debug:
    msg: "{{ node_check.msg }}"
  when: not node_check.current

# ansible k8s_nodes -m nodenet.cni.cni_node_check -a '{"plugin": {"bin_dir": ["/opt/cni/bin"]}, "agent": false}'
"""

RETURN = r"""
current:
  description: Every checked part is current.
  returned: success
  type: bool
  sample: false
not_current:
  description: The first part that is not current, V(plugin), V(agent) or V(state); empty when the node is current.
  returned: success
  type: str
  sample: state
msg:
  description: "What was found, for example C(state: cni_node_state would change: routes)."
  returned: always
  type: str
  sample: "agent: no agent serves on the node (want 3f2a9c1b7d0e)"
plugin:
  description:
    - M(nodenet.cni.cni_plugin)'s result for a node it would not change (C(runtime_dir), C(digest), C(lib_dir), C(plugins),
      C(agent)), when the plugin part is current.
  returned: when the plugin part is current
  type: dict
  sample: {"runtime_dir": "/opt/cni/bin/.nodenet-cni/3f2a9c1b7d0e5a4f", "digest": "3f2a9c1b7d0e5a4f..."}
agent_status:
  description: The agent's C(--status) JSON (C(running), C(digest), counters), when the agent was asked.
  returned: when O(agent) is true and the plugin part is current
  type: dict
  sample: {"running": true, "digest": "3f2a9c1b7d0e5a4f..."}
state:
  description: M(nodenet.cni.cni_node_state)'s check-mode result (C(changed), C(changed_parts), each part's result).
  returned: when O(state) is given and the parts before it are current
  type: dict
  sample: {"changed": true, "changed_parts": ["routes"]}
"""
