# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every module that runs on a CNI node shares: O(bin_dir) and the platform.

The argument spec side is module_utils/node_libs.node_module, which adds the
same option and loads pyroute2/netaddr from the node or the plugin runtime.
"""

from __future__ import annotations


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  bin_dir:
    description:
      - Directories holding the CNI plugins, in search order (the runtime's C(CNI_PATH)), where
        M(nodenet.cni.cni_plugin) installed them.
      - When the node's python3 has no pyroute2 or netaddr (a stock node), the module uses the copies in the plugin
        runtime the launchers there name.
    type: list
    elements: path
    default: [/opt/cni/bin]
attributes:
  platform:
    description: Linux nodes; acts in the network namespace the module runs in.
    support: full
    platforms: posix
"""

    # conf_dir and cache_dir, for the modules that read libcni's configs and result cache
    # (argument spec: node_libs.CNI_DIR_OPTIONS)
    CNI_DIRS = r"""
options:
  conf_dir:
    description: The CNI configuration directory (C(NETCONFPATH)).
    type: path
    default: /etc/cni/net.d
  cache_dir:
    description: libcni's cache directory; results are in its C(results/) subdirectory.
    type: path
    default: /var/lib/cni
"""
