# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter: stable per-node pod subnets (see plugins/module_utils/podcidr.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.nodenet.cni.plugins.module_utils.podcidr import SubnetError, allocate


def pod_subnets(nodes, cluster_cidr, prefix_length):
    try:
        return allocate(cluster_cidr, int(prefix_length), nodes)
    except SubnetError as e:
        raise AnsibleFilterError(str(e))
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError("pod_subnets: %s" % e)


class FilterModule:
    def filters(self):
        return {"pod_subnets": pod_subnets}
