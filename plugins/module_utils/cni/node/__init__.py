# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node half: what the collection's modules do on a node (their back-ends).

attach        cni_attach: a throw-away pod through the runtime chain, with its trace
attach_cli    cni_attach's work without a module run: JSON request on stdin, result on stdout (site.yml's probes)
installer     the plugin bundle: built on the controller, unpacked, sealed and verified on the node (cni_plugin)
install_cli   cni_plugin's work, for the module and for a first install from the bundle itself (module_utils/install_boot.py)
facts         cni_facts: plugins, versions, the active config, leaks and their remedies
lint          the network list checked with the plugins' own parsers (cni_netconf, cni_facts)
netconf_file  the conf file as declared state: render, compare, atomic write, exclusive
gc            cni_gc: stale attachments get a chain DEL, leaked leases are released
bridge_state  the pod bridge as declared state (cni_bridge, boot)
owned_routes  the pod-subnet routes this collection owns (cni_routes, boot)
boot          the boot unit's entry point: restore the bridge and the routes
boot_files    cni_boot: the sysctl drop-in, boot.json, the boot unit and its link as declared state
part          PartFailed: what each back-end's reconcile() raises (cni_node_state runs all four in one go)
"""
