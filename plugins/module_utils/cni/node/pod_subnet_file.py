# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's persisted pod subnets: cni_node_state's `pod_subnets` part.

The role gives each node its pod subnets once, one per family, and keeps
them on the node (by default /etc/nodenet/pod_subnet, one CIDR per line):
the next assignment reads that file first, so a node keeps its subnets
across re-runs, a controller without facts and a changed group. Written
atomically, 0644, owned by the module's user, and only when it differs
(the same observe / compare / act steps as the boot files).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Dict, List, Mapping

from . import boot_files
from .part import PartFailed

FILE_MODE = 0o644
ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    subnets=dict(type="list", elements="str", default=[]),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


class PodSubnetsError(Exception):
    """Bad input, naming the option (the module fails with it, changing nothing)."""

    def __init__(self, option: str, msg: str) -> None:
        super().__init__("%s: %s" % (option, msg))
        self.msg = "%s: %s" % (option, msg)


def render(subnets: List[str]) -> bytes:
    return "".join(subnet + "\n" for subnet in subnets).encode()


def desired_from_params(params: Mapping[str, Any]) -> boot_files.Desired:
    """The file cni_node_state should leave; PodSubnetsError names the option."""
    path = params["path"]
    if not os.path.isabs(path):
        raise PodSubnetsError("path", "%r is not an absolute path" % path)
    if params["state"] == "absent":
        return boot_files.Desired(path, "absent")
    subnets, families = [], set()
    for index, text in enumerate(params["subnets"]):
        option = "subnets[%d]" % index
        try:
            network = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as e:
            raise PodSubnetsError(option, "%r is not a subnet in CIDR notation (%s)" % (text, e)) from None
        if network.version in families:
            raise PodSubnetsError(option, "a second IPv%d subnet (%s); a node has one pod subnet per family" % (network.version, text))
        families.add(network.version)
        subnets.append(text.strip())
    if not subnets:
        raise PodSubnetsError("subnets", "at least one subnet is needed with state=present")
    return boot_files.Desired(path, "file", render(subnets), mode=FILE_MODE)


def reconcile(desired: boot_files.Desired, check_mode: bool, want_diff: bool) -> Dict[str, Any]:
    """Observe, compare and (unless check_mode) write or remove the file; the part's result."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        changes = boot_files.plan_paths([desired], uid, gid)
        if changes and not check_mode:
            boot_files.apply(changes, uid, gid)
    except boot_files.BootFilesError as e:  # a directory where the file goes
        raise PartFailed(e.msg) from e
    except OSError as e:
        raise PartFailed("cannot write %s: %s" % (desired.path, e)) from e
    subnets = desired.content.decode().split()
    reasons = changes[0].reasons if changes else []
    result: Dict[str, Any] = dict(changed=bool(changes), path=desired.path, subnets=subnets, reasons=reasons)
    if want_diff:
        result["diff"] = boot_files.diffs(changes)
    return result
