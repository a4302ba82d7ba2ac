# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter: stable per-node pod subnets, one per family (see plugins/module_utils/podcidr.py)."""

from __future__ import annotations

import sys

from ansible.errors import AnsibleFilterError

try:
    from ansible_collections.nodenet.cni.plugins.module_utils.podcidr import SubnetError, allocate_families, cluster_cidrs

    HAS_NETADDR = True
except ImportError:  # pragma: no cover - depends on the controller
    HAS_NETADDR = False


def missing_netaddr(name: str) -> AnsibleFilterError:
    return AnsibleFilterError(
        "%s needs the Python library netaddr on the controller; install it into the Python that runs Ansible: "
        "%s -m pip install 'netaddr>=0.10' (see the collection README, 'Install from Galaxy')" % (name, sys.executable)
    )


def pod_subnets(nodes, cluster_cidr, prefix_length, prefix_length_ipv6=None):
    if not HAS_NETADDR:
        raise missing_netaddr("nodenet.cni.pod_subnets")
    try:
        families = {net.version for net in cluster_cidrs(cluster_cidr)}
        lengths = {4: int(prefix_length), 6: int(prefix_length_ipv6) if prefix_length_ipv6 is not None else 64}
        if families == {6} and prefix_length_ipv6 is None:
            lengths[6] = int(prefix_length)  # an IPv6-only cluster with the one prefix length given
        return allocate_families(cluster_cidr, lengths, nodes or {})
    except SubnetError as e:
        raise AnsibleFilterError("pod_subnets: %s" % e) from e
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError("pod_subnets: %s" % e) from e


class FilterModule:
    def filters(self):
        return {"pod_subnets": pod_subnets}
