# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""net/netns.py: "the netns is gone" is a type (NetnsGone), as Go's
ns.NSPathNotExistErr, so that a DEL never decides by an error's text."""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.net.netns import NetnsGone, entered, netns_alive
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


def _enter(path):
    with entered(path):
        pass


def test_a_missing_path_is_netns_gone(tmp_path):
    with pytest.raises(NetnsGone, match="failed to open netns"):
        _enter(str(tmp_path / "missing"))


def test_a_file_left_where_a_netns_was_is_netns_gone(tmp_path):
    plain = tmp_path / "leftover"
    plain.write_text("")  # what a lost bind mount leaves under /var/run/netns
    with pytest.raises(NetnsGone, match="not a network namespace") as e:
        _enter(str(plain))
    assert e.value.code == 999


def test_a_path_that_cannot_be_opened_for_another_reason_is_not_netns_gone(tmp_path):
    plain = tmp_path / "file"
    plain.write_text("")
    with pytest.raises(CNIError) as e:
        _enter(str(plain / "below-a-file"))  # ENOTDIR: Go's os.IsNotExist says no too
    assert not isinstance(e.value, NetnsGone)


def test_netns_alive_means_a_namespace_on_nsfs(tmp_path):
    assert netns_alive("/proc/self/ns/net")
    plain = tmp_path / "leftover"
    plain.write_text("")
    assert not netns_alive(str(plain))
    assert not netns_alive(str(tmp_path / "missing")) and not netns_alive("")
