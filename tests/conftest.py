# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the checkout importable as ansible_collections.nodenet.cni.

The repository root is the collection root; `collections/` (made by
scripts/setup.sh, git-ignored) holds ansible_collections/nodenet/cni as a
symlink back to it, the layout ansible.cfg and ansible-test expect.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "nodenet", "cni")

if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.relpath(ROOT, os.path.dirname(LINK)), LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
