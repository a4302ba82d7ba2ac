# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lab_node: its options' checks (the one interface-name rule) and the underlay's removal, without root."""

import pytest

from ansible_collections.nodenet.cni.plugins.modules import lab_node


def _params(**over):
    params = {"name": "nnt-node1", "state": "present", "state_dir": "/run/nodenet-lab/nnt/nnt-node1", "private_paths": ["/etc/cni"],
              "directories": [], "underlay_netns": "nnt-underlay", "underlay_bridge": "nnt-br", "underlay_port": "nnt-n1",
              "underlay_cidr": "172.31.250.0/24", "underlay_cidr_ipv6": "", "index": 1, "interface": "eth0", "sysctls": {},
              "remove_underlay": False}
    params.update(over)
    return params


def test_valid_options_pass():
    lab_node.check_params(_params())
    lab_node.check_params(_params(state="absent", underlay_bridge=None, underlay_cidr=None, index=None, remove_underlay=True))


@pytest.mark.parametrize(
    "over, words",
    [
        ({"underlay_cidr": "172.31.250.1/24"}, "underlay_cidr: "),
        ({"underlay_cidr": "fd00::/64"}, "must be an IPv4 network"),
        ({"underlay_cidr_ipv6": "10.0.0.0/8"}, "must be an IPv6 network"),
        ({"underlay_port": "n" * 16}, "underlay_port 'nnnnnnnnnnnnnnnn' is not a valid interface name: it is longer than 15 bytes"),
        ({"interface": "eth:0"}, "interface 'eth:0' is not a valid interface name: it contains '/', ':'"),
        ({"underlay_bridge": "br@0"}, "other than letters, digits"),
        ({"remove_underlay": True}, "remove_underlay needs state=absent"),
        ({"state": "absent", "underlay_netns": None, "remove_underlay": True}, "remove_underlay needs state=absent and underlay_netns"),
    ],
)
def test_bad_options_are_refused_naming_the_option(over, words):
    with pytest.raises(lab_node.LabError) as e:
        lab_node.check_params(_params(**over))
    assert words in str(e.value)


@pytest.mark.parametrize("remove_underlay, underlay_file, deletes", [(True, True, True), (True, False, False), (False, True, False)])
def test_absent_deletes_the_underlay_only_when_asked_and_there(remove_underlay, underlay_file, deletes):
    node = lab_node.LabNode(host=None, params=_params(state="absent", remove_underlay=remove_underlay))
    found = {"port": None, "mnt": False, "uts": False, "netns_file": False, "state_dir_mount": None, "state_dir": False,
             "underlay_file": underlay_file}
    steps = node.plan_absent(found)
    assert (("delete network namespace nnt-underlay", ["ip", "netns", "delete", "nnt-underlay"]) in steps) is deletes
    assert ("underlay_netns" in node.summary(dict(found, netns=False))) is remove_underlay
