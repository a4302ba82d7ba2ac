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


def _hold_runtime() -> object:
    """Installed as `nodenet_cni`: hold a shared flock on our runtime directory
    for the life of the process, so an upgrade (installer.retire_runtime) sees
    that a running plugin still imports from it and keeps it. Best effort."""
    import fcntl
    import os

    try:
        fd = os.open(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)  # the installer is removing it right now
        return None
    return fd


if __name__ == "nodenet_cni":  # the installed runtime, not the collection's own copy
    _RUNTIME_LOCK = _hold_runtime()
