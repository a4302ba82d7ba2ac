# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restore a node's pod network at boot, before the first pod starts.

A reboot loses everything in the kernel: the pod bridge and the routes to
the other nodes' pod subnets (forwarding comes back from the sysctl.d
drop-in the role writes). roles/cni_node persists the desired state in a
JSON file and installs a systemd oneshot unit, ordered before containerd,
CRI-O and kubelet, whose ExecStart runs `main` from the installed plugin
runtime (nodenet_cni.node.boot) on the node's python3:

    {"bridge": {"name": "cni0", "addresses": ["10.244.1.1/24"], "mtu": null},
     "routes": {"protocol": 77, "table": 254,
                "routes": [{"subnet": "10.244.2.0/24", "via": "192.168.10.12"}]}}

It applies that state through the same code as cni_bridge and cni_routes
(net.bridge_state, net.owned_routes), so a booted node is exactly what the
role left. Prints one line per step and exits non-zero on failure (the
journal has the reason). Never touches a route it does not own.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, TextIO

from . import bridge_state, owned_routes
from ..spec import ERR_INTERNAL, CNIError

DEFAULT_STATE_FILE = "/etc/nodenet/boot.json"


def load_state(path: str) -> Dict[str, Any]:
    with open(path, "rb") as f:
        state = json.loads(f.read())
    if not isinstance(state, dict):
        raise ValueError("%s: not a JSON object" % path)
    return state


def restore(state: Dict[str, Any], out: TextIO) -> None:
    """Bridge first (pods attach to it), then the routes to the other nodes."""
    from ..net.rtnl import Rtnl

    bridge = state.get("bridge")
    routes = state.get("routes")
    with Rtnl() as ipr:
        if isinstance(bridge, dict) and bridge.get("name"):
            spec = bridge_state.BridgeSpec(
                name=bridge["name"],
                addresses=bridge_state.parse_addresses(bridge.get("addresses") or []),
                mtu=bridge.get("mtu"),
                promisc=False,
                vlan_filtering=None,
                force_address=True,
                ip_forward=None,  # the sysctl.d drop-in's job
                ipv6_forwarding=None,
            )
            before = bridge_state.read_state(ipr, spec.name)
            after = bridge_state.desired_state(before, spec)
            if bridge_state.comparable(before) != bridge_state.comparable(after):
                bridge_state.apply(ipr, spec, before, after)
                out.write("bridge %s: made %s\n" % (spec.name, ", ".join(spec.addresses) or "(no address)"))
            else:
                out.write("bridge %s: already as declared\n" % spec.name)
        if isinstance(routes, dict):
            protocol = int(routes.get("protocol", 77))
            table = int(routes.get("table", 254))
            desired = owned_routes.parse_routes(routes.get("routes") or [])
            current = owned_routes.read_owned(ipr, protocol, table)
            plan = owned_routes.plan_routes(current, desired, exclusive=True)
            conflicts = owned_routes.foreign_conflicts(ipr, plan.add, protocol, table)
            if conflicts:
                raise CNIError(ERR_INTERNAL, "subnets already routed by routes nodenet.cni does not own: %s" % ", ".join(conflicts))
            if plan.changed:
                owned_routes.apply_plan(ipr, plan, protocol, table)
            described: List[str] = [r.describe() for r in plan.add + plan.replace]
            out.write("routes (proto %d): %s\n" % (protocol, ", ".join(described) if described else "already as declared"))


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = args[0] if args else DEFAULT_STATE_FILE
    try:
        restore(load_state(path), out)
    except (OSError, ValueError) as e:
        sys.stderr.write("nodenet-cni-boot: cannot read %s: %s\n" % (path, e))
        return 1
    except CNIError as e:
        sys.stderr.write("nodenet-cni-boot: %s\n" % e.msg)
        return 1
    return 0
