# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One interface-name rule and one container-ID/network-name rule (names.py):
skel, the runtime chain, the bridge config and the script guard accept and
refuse the same names, each with its own code and words."""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni import names, skel
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.bridge import validate_ifname
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import validate_name
from ansible_collections.nodenet.cni.plugins.module_utils.cni.net import nftcmd
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.chain import RuntimeConf, validate_attachment
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

IFNAMES = [
    ("eth0", None),
    ("e" * 15, None),
    ("é" * 7, None),  # 14 bytes
    ("", names.EMPTY),
    ("e" * 16, names.TOO_LONG),
    ("é" * 8, names.TOO_LONG),  # 8 characters, 16 bytes
    (".", names.DOTS),
    ("..", names.DOTS),
    ("eth/0", names.BAD_CHARACTER),
    ("eth:0", names.BAD_CHARACTER),
    ("eth 0", names.BAD_CHARACTER),
    ("eth\n0", names.BAD_CHARACTER),
    ("eth\x010", names.BAD_CHARACTER),
    ("eth\udc800", names.NOT_UTF8),  # a surrogate-escaped byte from os.environ
]

NAMES = [
    ("ctr1", True),
    ("a" * 64, True),
    ("A.b_c-d", True),
    ("", False),
    ("-x", False),
    ("_x", False),
    ("../evil", False),
    ("x\n", False),  # Python's `$` would take this
    ("a b", False),
]


def _refused(call, *args):
    try:
        call(*args)
    except CNIError as e:
        return e
    return None


def _skel_env(ifname="eth0", container_id="ctr1"):
    return {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": container_id, "CNI_IFNAME": ifname, "CNI_PATH": "/nonexistent"}


@pytest.mark.parametrize("name, fault", IFNAMES)
def test_every_layer_applies_the_one_interface_name_rule(name, fault):
    assert names.ifname_fault(name) == fault
    assert (names.ifname_problem(name) is None) == (fault is None)
    refusals = {
        "skel": _refused(skel._validate_env, "DEL", _skel_env(ifname=name)),
        "chain": _refused(validate_attachment, RuntimeConf(container_id="ctr1", ifname=name), "net"),
        "config": _refused(validate_ifname, name, "bridge"),
        "script guard": _refused(nftcmd.safe_ifname, name, "ifname"),
    }
    if fault is None:
        assert refusals == dict.fromkeys(refusals)
        return
    assert all(refusals.values()), refusals
    # each caller words it and picks the code itself
    assert refusals["skel"].code == refusals["chain"].code == 4
    assert refusals["config"].code == refusals["script guard"].code == 7
    assert refusals["chain"].msg.startswith("interface name ")  # Go's ValidateInterfaceName texts


def test_an_empty_ifname_is_missing_env_in_skel_before_the_rule():
    # the Go skel's table: an empty required variable is "missing", code 4
    assert "missing" in _refused(skel._validate_env, "DEL", _skel_env(ifname="")).msg


@pytest.mark.parametrize("name, ok", NAMES)
def test_container_ids_and_network_names_follow_one_rule(name, ok):
    assert names.valid_name(name) is ok
    refusals = {
        "skel container id": _refused(skel._validate_env, "DEL", _skel_env(container_id=name)) if name else None,
        "chain container id": _refused(validate_attachment, RuntimeConf(container_id=name, ifname="eth0"), "net") if name else None,
        "chain network": _refused(validate_attachment, RuntimeConf(container_id="ctr1", ifname="eth0"), name) if name else None,
        "netconf name": _refused(validate_name, name) if name else None,
        "script guard": _refused(nftcmd.safe_name, name, "containerID"),
    }
    if ok:
        assert refusals == dict.fromkeys(refusals)
    else:
        assert all(v is not None for k, v in refusals.items() if name or k == "script guard"), refusals
