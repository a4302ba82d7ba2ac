#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_boot
short_description: Persist what a reboot needs to bring the pod network back, in one step
version_added: "0.2.0"
description:
  - Writes the files a node's pod network needs to survive a reboot, as one desired state
    - a sysctl.d drop-in (O(sysctl_file)) with O(sysctls), applied by systemd-sysctl early at boot;
    - the desired bridge and pod-subnet routes as JSON (O(restore_file)), which the boot unit replays;
    - a systemd oneshot unit (O(unit) in O(systemd_dir)) that runs O(command) after the network is online and before
      the units in O(before);
    - its C(WantedBy) link in C(<systemd_dir>/<wanted_by>.wants/), which is what C(systemctl enable) makes.
  - Each path is compared with its desired content, link target, mode (C(0644), directories C(0755)) and owner (the
    user the module runs as, normally root); only what differs is written, atomically. The module reports changed
    only when it wrote or removed something.
  - It never calls systemctl. The unit runs at the next boot; the state of the running system is made by
    M(nodenet.cni.cni_bridge) and M(nodenet.cni.cni_routes).
  - Needs nothing but the node's python3 (no pyroute2, no netaddr).
author:
  - nodenet.cni maintainers (@nodenet)
options:
  state:
    description:
      - V(present) makes the files match; V(absent) removes the unit's link, the unit, O(sysctl_file) and O(restore_file).
    type: str
    choices: [present, absent]
    default: present
  sysctls:
    description:
      - The sysctls to persist, name to value, for example C(net.ipv4.ip_forward=1). Values are numbers or one-line strings;
        booleans are written as V(1)/V(0).
      - Empty removes O(sysctl_file).
    type: dict
    default: {}
  sysctl_file:
    description: The sysctl.d drop-in. An absolute path.
    type: path
    default: /etc/sysctl.d/90-nodenet-cni.conf
  restore:
    description:
      - The pod network the boot unit restores, written as JSON to O(restore_file).
      - C(bridge) is the pod bridge (C(name), C(addresses) with prefix length, C(mtu) or null); C(routes) the owned
        pod-subnet routes (C(protocol), C(table), C(routes) as a list of C(subnet)/C(via)). Either may be left out.
      - Checked before anything is written; a bad entry fails naming it (for example C(restore.routes.routes)).
    type: dict
    default: {}
  restore_file:
    description: Where O(restore) is written. An absolute path.
    type: path
    default: /etc/nodenet/boot.json
  systemd_dir:
    description: The directory of the unit and its C(.wants) directory. An absolute path.
    type: path
    default: /etc/systemd/system
  unit:
    description: The boot unit's name (a C(.service)).
    type: str
    default: nodenet-cni-boot.service
  command:
    description:
      - The unit's C(ExecStart), as an argv list; the first element is an absolute path. Required with O(state=present).
      - Each argument is quoted for systemd (shell-like quoting, C(%) and C($) escaped).
    type: list
    elements: str
  description:
    description: The unit's C(Description).
    type: str
    default: "nodenet.cni: restore the pod network (bridge, pod-subnet routes)"
  before:
    description: Units the boot unit is ordered before (C(Before=)), so their first pod finds the network.
    type: list
    elements: str
    default: [containerd.service, crio.service, kubelet.service]
  wanted_by:
    description:
      - The target whose C(.wants) directory links the unit (C(WantedBy=)). Empty writes no link and no C([Install]) section.
    type: str
    default: multi-user.target
attributes:
  check_mode:
    description: Reports which files would be written or removed, and why, without touching them.
    support: full
  diff_mode:
    description: Shows each changed file (or link target) before and after.
    support: full
  platform:
    description: Linux nodes with systemd (the files are harmless elsewhere).
    support: full
    platforms: posix
notes:
  - The lab's nodes have private C(/etc/sysctl.d) and C(/etc/systemd/system), so a lab reboot (playbooks/lab_reboot.yml)
    replays exactly these files.
seealso:
  - module: nodenet.cni.cni_bridge
  - module: nodenet.cni.cni_routes
"""

EXAMPLES = r"""
- name: Make the pod network survive a reboot
  nodenet.cni.cni_boot:
    sysctls:
      net.ipv4.ip_forward: 1
    restore:
      bridge:
        name: cni0
        addresses: [10.244.1.1/24]
        mtu: null
      routes:
        protocol: 77
        table: 254
        routes:
          - subnet: 10.244.2.0/24
            via: 192.168.10.12
    command: [/usr/bin/python3, /opt/cni/bin/.nodenet-cni/boot.py, /etc/nodenet/boot.json]

- name: Remove the boot persistence
  nodenet.cni.cni_boot:
    state: absent
"""

RETURN = r"""
files:
  description: Every path written or removed (would be, in check mode), with what was done and why.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
    action:
      description: V(created), V(updated) or V(removed).
      type: str
    reasons:
      description: What differed (V(missing), V(content), V(target), V(mode 0600), V(owner 1000:1000), V(present)).
      type: list
      elements: str
  sample: [{"path": "/etc/nodenet/boot.json", "action": "updated", "reasons": ["content"]}]
"""

# first: the cni package imported below runs from the installed plugin runtime's byte-code when it is the same
from ansible_collections.nodenet.cni.plugins.module_utils import runtime_bytecode  # noqa: F401 pylint: disable=unused-import
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import boot_files
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node.part import PartFailed


def main() -> None:
    module = AnsibleModule(argument_spec=boot_files.ARGUMENT_SPEC, required_if=boot_files.REQUIRED_IF, supports_check_mode=True)
    try:
        spec = boot_files.BootSpec.from_params(module.params)
        result = boot_files.reconcile(spec, module.check_mode, module._diff)
    except (boot_files.BootFilesError, PartFailed) as e:
        module.fail_json(msg=e.msg)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
