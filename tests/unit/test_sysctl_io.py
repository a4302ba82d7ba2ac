# SPDX-License-Identifier: GPL-3.0-or-later
"""net/sysctl.py reads and writes with os.open/os.read/os.write: the same answers as a file object."""

import os

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.net import sysctl
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError


def test_read_write_and_ensure_behave_as_with_a_file_object(tmp_path, monkeypatch):
    monkeypatch.setattr(sysctl, "PROC_SYS", str(tmp_path))
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    key = tmp_path / "net" / "ipv4" / "ip_forward"
    key.write_text("0\n")
    assert sysctl.read_sysctl("net/ipv4/ip_forward") == "0"
    assert sysctl.ensure_sysctl("net/ipv4/ip_forward", "1") is True
    assert key.read_text() == "1"  # truncated, then the value without a newline, as open("w").write
    assert sysctl.ensure_sysctl("net/ipv4/ip_forward", "1") is False
    key.write_text("x" * 10000 + "  \n")
    assert sysctl.read_sysctl("net/ipv4/ip_forward") == "x" * 10000  # longer than one read
    assert sysctl.read_sysctl("net/ipv4/nope") is None
    sysctl.write_sysctl("net/ipv4/new_key", "5")  # O_CREAT, as open("w")
    assert (tmp_path / "net" / "ipv4" / "new_key").read_text() == "5"
    with pytest.raises(CNIError) as exc:
        sysctl.write_sysctl("net/missing_dir/key", "1")
    assert "failed to set sysctl net/missing_dir/key=1" in exc.value.msg
    assert sysctl.try_write_sysctl("net/missing_dir/key", "1") is False
    os.chmod(key, 0o000)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(CNIError):
            sysctl.read_sysctl("net/ipv4/ip_forward")
