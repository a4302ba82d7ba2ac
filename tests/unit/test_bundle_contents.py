# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the plugin bundle carries to every node, and that it is enough.

netaddr's IEEE MAC-vendor registries were 80 % of the bundle (8.9 of 11 MB
before compression) and nothing on a node reads them; they are left out.
A runtime unpacked from the bundle must still import and use everything
the plugins and the modules use from netaddr and pyroute2, on the node's
own python3, with nothing else on its path.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

NODE_PYTHON = "/usr/bin/python3"

# What the runtime uses from the bundled libraries, the way it imports them.
USES = r"""
import netaddr
from netaddr import IPNetwork, IPAddress, IPRange, IPSet, EUI
net = IPNetwork("10.244.1.0/24")
assert IPAddress("10.244.1.7") in net and net.size == 256
assert IPSet([IPRange("10.0.0.1", "10.0.0.9")]).size == 9
assert str(EUI("02:42:ac:11:00:02")) == "02-42-AC-11-00-02"
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg
import nodenet_cni.skel, nodenet_cni.net.rtnl, nodenet_cni.ipam.allocator
# what a module borrows from the runtime (module_utils/node_libs.py): all of pyroute2's __init__
import pyroute2
from pyroute2 import IPRoute, NDB, NetNS
with IPRoute() as ipr:
    assert ipr.link_lookup(ifname="lo")
print("ok")
"""


@pytest.fixture(scope="module")
def files():
    return installer.collect_sources()


def test_the_mac_vendor_registries_stay_home(files):
    assert not [path for path in files if path.startswith("netaddr/eui/") and path.endswith((".txt", ".idx"))]
    # the rest of netaddr's eui package is there: netaddr's __init__ imports it
    assert "netaddr/eui/__init__.py" in files and "netaddr/eui/ieee.py" in files


def test_every_exclude_names_a_file_the_library_has():
    """An exclude that matches nothing (a renamed file upstream) would silently ship the data again."""
    import importlib.util

    for lib, excludes in installer.BUNDLE_EXCLUDES.items():
        root = list(importlib.util.find_spec(lib).submodule_search_locations)[0]
        for rel in excludes:
            if rel.endswith("/"):
                assert os.path.isdir(os.path.join(root, rel)), "%s/%s" % (lib, rel)
            else:
                assert os.path.isfile(os.path.join(root, rel)), "%s/%s" % (lib, rel)


def test_the_excluded_pyroute2_subpackages_stay_home(files):
    for sub in ("bsd", "dhcp", "ext", "fixtures", "decoder", "wirouting"):
        assert not [path for path in files if path.startswith("pyroute2/%s/" % sub)], sub
    # pyroute2's Linux parts are all there
    assert "pyroute2/iproute/linux.py" in files and "pyroute2/ndb/main.py" in files


def test_the_bundle_is_small(files):
    total = sum(len(data) for data in files.values())
    assert total < 3_000_000, "bundle sources are %d bytes" % total


@pytest.mark.skipif(not os.path.exists(NODE_PYTHON), reason="no node python3")
def test_a_runtime_from_the_bundle_has_what_the_plugins_use(tmp_path, files):
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    script = "import sys; sys.path.insert(0, %r)\n" % str(tmp_path) + USES
    done = subprocess.run([NODE_PYTHON, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
