# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nodenet.cni: the CNI plugins and runtime, one pure-Python package.

Internal imports are relative so the same package runs inside Ansible
modules (as ansible_collections.nodenet.cni.plugins.module_utils.cni) and,
copied by cni_plugin, as the installed plugins' runtime.
"""

__version__ = "0.1.0"
