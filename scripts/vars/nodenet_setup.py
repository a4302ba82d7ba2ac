# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Repository-only vars plugin (loaded by the checkout's ansible.cfg): say what
to run when the checkout is not set up, before a module fails with
"No module named 'ansible_collections'". It adds no variables."""

from __future__ import annotations

DOCUMENTATION = r"""
name: nodenet_setup
short_description: Explain C(make setup) when this checkout's collection link is missing
description:
  - Loaded only by the repository's C(ansible.cfg), for ad-hoc commands and playbooks alike. Short module names
    (C(ansible node1 -m cni_facts)) load the modules from C(library/), and their imports need the collection on the
    collections path, which C(make setup) links as C(collections/ansible_collections/nodenet/cni).
  - When no collections path holds C(nodenet.cni), prints one warning that says so and what to run. Adds no variables.
"""

import os

from ansible import constants as C
from ansible.plugins.vars import BaseVarsPlugin
from ansible.utils.display import Display

display = Display()


def collection_on_path() -> bool:
    for path in C.COLLECTIONS_PATHS or []:
        root = os.path.join(os.path.expanduser(path), "ansible_collections", "nodenet", "cni")
        if os.path.isfile(os.path.join(root, "galaxy.yml")) or os.path.isfile(os.path.join(root, "MANIFEST.json")):
            return True
    return False


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = False  # a path plugin of this checkout: on whenever its ansible.cfg is
    # One instance for the whole run: without this, the vars loader finds, loads and parses this
    # plugin's DOCUMENTATION again for every host of every task (about 3 ms of the controller's one
    # strategy process each time, serial: 10 nodes x 25 tasks).
    is_stateless = True
    _checked = False

    def get_vars(self, loader, path, entities, cache=True):
        if not VarsModule._checked:
            VarsModule._checked = True
            if not collection_on_path():
                display.warning(
                    "nodenet.cni is not on the collections path (%s): this checkout is not set up. Run `make setup` "
                    "(scripts/setup.sh) in the repository root; it links collections/ansible_collections/nodenet/cni to "
                    "the checkout and makes .venv. Until then short module names (-m cni_facts) and nodenet.cni.* fail "
                    "with \"No module named 'ansible_collections'\"." % ", ".join(C.COLLECTIONS_PATHS or [])
                )
        return {}
