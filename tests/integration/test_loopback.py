# SPDX-License-Identifier: GPL-3.0-or-later
"""loopback, exec'd like a runtime does, for every spec version."""

import os

import pytest
from cnitest import exec_plugin

VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def lo_flags(ns):
    with ns.ipr() as ipr:
        return ipr.get_links(ipr.link_lookup(ifname="lo")[0])[0]["flags"]


@pytest.mark.parametrize("version", VERSIONS)
def test_add_sets_lo_up_and_del_sets_it_down(version, cni_bin, host_ns, container_ns):
    container_ns.run(["ip", "link", "set", "lo", "down"])
    plugin = os.path.join(cni_bin, "nodenet-loopback")
    conf = {"cniVersion": version, "name": "lo", "type": "nodenet-loopback"}
    res = exec_plugin(plugin, "ADD", conf, host=host_ns, netns=container_ns.path).ok().json
    assert res["cniVersion"] == version
    assert lo_flags(container_ns) & 1
    if version in ("0.1.0", "0.2.0"):
        assert res["ip4"]["ip"] == "127.0.0.1/8"
    else:
        assert res["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": container_ns.path}]
        assert res["ips"][0]["address"] == "127.0.0.1/8"
        assert ("version" in res["ips"][0]) == (version < "1.0.0")
    if version >= "0.4.0":
        exec_plugin(plugin, "CHECK", dict(conf, prevResult=res), host=host_ns, netns=container_ns.path).ok()
    exec_plugin(plugin, "DEL", conf, host=host_ns, netns=container_ns.path).ok()
    assert not lo_flags(container_ns) & 1


def test_check_fails_when_lo_is_down(cni_bin, host_ns, container_ns):
    plugin = os.path.join(cni_bin, "nodenet-loopback")
    conf = {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}
    exec_plugin(plugin, "ADD", conf, host=host_ns, netns=container_ns.path).ok()
    container_ns.run(["ip", "link", "set", "lo", "down"])
    run = exec_plugin(plugin, "CHECK", conf, host=host_ns, netns=container_ns.path)
    assert run.rc != 0 and "loopback interface is down" in run.json["msg"]


def test_del_succeeds_without_netns(cni_bin, host_ns, container_ns):
    plugin = os.path.join(cni_bin, "nodenet-loopback")
    conf = {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}
    exec_plugin(plugin, "DEL", conf, host=host_ns, netns="").ok()
    gone = container_ns.path
    container_ns.delete()
    exec_plugin(plugin, "DEL", conf, host=host_ns, netns=gone).ok()
    exec_plugin(plugin, "DEL", conf, host=host_ns, netns=gone).ok()


def test_prev_result_passes_through(cni_bin, host_ns, container_ns):
    plugin = os.path.join(cni_bin, "nodenet-loopback")
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": container_ns.path}],
            "ips": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 0}]}
    conf = {"cniVersion": "1.0.0", "name": "lo", "type": "loopback", "prevResult": prev}
    res = exec_plugin(plugin, "ADD", conf, host=host_ns, netns=container_ns.path).ok().json
    assert res["ips"] == prev["ips"] and res["interfaces"] == prev["interfaces"]


def test_containerds_cni_loopback_network_del_with_garbage_prev_result_succeeds(cni_bin, host_ns, container_ns):
    """containerd's `cni-loopback` (0.3.1): DEL on Stop with the netns, again on Remove without it."""
    plugin = os.path.join(cni_bin, "nodenet-loopback")
    conf = {"cniVersion": "0.3.1", "name": "cni-loopback", "type": "loopback"}
    exec_plugin(plugin, "ADD", conf, host=host_ns, netns=container_ns.path, container_id="a" * 64).ok()
    broken = dict(conf, prevResult={"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "nope"}]}, runtimeConfig="x")
    exec_plugin(plugin, "DEL", broken, host=host_ns, netns=container_ns.path, container_id="a" * 64).ok()
    assert not lo_flags(container_ns) & 1, "lo is down again"
    exec_plugin(plugin, "DEL", conf, host=host_ns, netns="", container_id="a" * 64).ok()
