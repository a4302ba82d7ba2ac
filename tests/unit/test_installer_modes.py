# SPDX-License-Identifier: GPL-3.0-or-later
"""The installed plugins' file modes do not depend on the installing process's umask.

Over SSH the modules run through sudo, which keeps the login user's umask
(the union with its own 022): a hardened node's 077 must not leave a
runtime only root can read, nor a 0700 bin dir.
"""

from __future__ import annotations

import os
import stat
import sys

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

FILES = {"nodenet_cni/__init__.py": b"", "nodenet_cni/plugin/loopback.py": b"VALUE = 1\n"}
DIGEST = "0123456789abcdef" * 4


def modes(root):
    """{relative path: mode} of everything below root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def wanted_mode(root, path):
    """A package's: directories and the launcher 0755, everything else 0644."""
    return 0o755 if os.path.isdir(os.path.join(root, path)) or path.endswith("nodenet-loopback") else 0o644


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_install_modes_are_a_packages_whatever_the_umask(tmp_path, umask):
    bin_dir, lib_dir = str(tmp_path / "opt/cni/bin"), str(tmp_path / "opt/cni/bin/.nodenet-cni")
    names = installer.plugin_names(["loopback"], installer.DEFAULT_PREFIX, reference_names=False)
    previous = os.umask(umask)
    try:
        installer.apply_state(bin_dir, lib_dir, names, DIGEST, FILES, sys.executable)
        assert os.umask(umask) == umask  # the caller's umask is given back
    finally:
        os.umask(previous)
    found = modes(str(tmp_path / "opt"))
    assert found, "nothing installed"
    wrong = {path: "%04o" % mode for path, mode in found.items() if mode != wanted_mode(str(tmp_path / "opt"), path)}
    assert wrong == {}
