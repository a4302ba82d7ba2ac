# SPDX-License-Identifier: GPL-3.0-or-later
"""What containerd's CRI sends the plugins, measured, and that our plugins take all of it.

Every plugin call of one pod's life (RunPodSandbox with a hostPort,
StopPodSandbox, RemovePodSandbox) is recorded by transparent wrappers in
the bin dir (tests/integration/cri/recorder.py). The facts asserted here are
the ways containerd differs from our own runtime (cni_attach): DEL twice,
the second without netns and prevResult; an extra `cni-loopback` network;
CNI_ARGS in varying order with IgnoreUnknown; 64-hex ids; Go-cased
capability args; containerd's environment reaching the plugins.
"""

from __future__ import annotations

import json
import re

import pytest
from cri.node import ENV_MARKER, NET_NAME, ContainerdNode, missing_tools
from cri.recorder import Recorder

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason="needs %s (apt: containerd runc busybox-static; make setup)" % " ".join(missing_tools()))
HOSTILE_ENV = {"PYTHONHOME": "/nonexistent-nodenet", "PYTHONPATH": "/nonexistent-nodenet", "PYTHONWARNINGS": "error"}
CRI_ARGS = {"IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"}


@pytest.fixture(params=["py", "go"])
def recorded(request, tmp_path):
    real = request.getfixturevalue("cni_bin" if request.param == "py" else "go_bin")
    recorder = Recorder(real, str(tmp_path / "bin"), str(tmp_path / "calls.jsonl"))
    # containerd's environment reaches the plugins: a node's containerd may carry PYTHON* variables (a
    # systemd drop-in, a distro's wrapper); our plugins run `python3 -I` and must not care
    with ContainerdNode("criproto", recorder.bin_dir, extra_env=HOSTILE_ENV) as node:
        yield node, recorder


def test_one_pod_life_as_the_plugins_see_it(recorded):
    node, rec = recorded
    sandbox = node.run_pod("web", port_mappings=[{"container_port": 80, "host_port": 18080, "protocol": "tcp"}])
    netns = rec.calls("bridge", "ADD")[0].env["CNI_NETNS"]
    node.client.stop_pod_sandbox(sandbox)
    node.client.remove_pod_sandbox(sandbox)

    calls = rec.calls()
    assert calls, "no plugin call recorded"
    assert [c for c in calls if c.rc != 0] == [], "a plugin call failed"

    # 64-hex sandbox ids; every call is for this sandbox; the bin dir is CNI_PATH
    assert re.fullmatch(r"[0-9a-f]{64}", sandbox)
    assert {c.env["CNI_CONTAINERID"] for c in calls} == {sandbox}
    assert {c.env["CNI_PATH"] for c in calls} == {rec.bin_dir}

    # the extra cni-loopback network: loopback on lo at 0.3.1, ADD once, DEL on Stop and on Remove
    loop = rec.calls("loopback")
    assert [c.command for c in loop] == ["ADD", "DEL", "DEL"]
    for call in loop:
        assert call.conf == {"cniVersion": "0.3.1", "name": "cni-loopback", "type": "loopback"}
        assert call.env["CNI_IFNAME"] == "lo"

    added = [ip["address"] for ip in json.loads(rec.calls("portmap", "ADD")[0].stdout)["ips"]]
    assert len(added) == 1

    # the pod network: ADD once; DEL twice -- Stop with the netns and the cached result as prevResult,
    # Remove (netns already gone) with CNI_NETNS empty and no prevResult (libcni dropped its cache)
    for plugin in ("bridge", "host-local", "portmap"):
        mine = rec.calls(plugin)
        assert [c.command for c in mine] == ["ADD", "DEL", "DEL"], plugin
        add, stop, remove = mine
        assert add.env["CNI_NETNS"] == stop.env["CNI_NETNS"] == netns != ""
        assert remove.env["CNI_NETNS"] == ""
        assert all(c.env["CNI_IFNAME"] == "eth0" and c.conf["name"] == NET_NAME for c in mine)
        if plugin != "host-local":  # the delegated IPAM sees what bridge passes on
            assert "prevResult" in stop.conf and "prevResult" not in remove.conf, plugin
            assert [ip["address"] for ip in stop.conf["prevResult"]["ips"]] == added, "Stop's DEL carries the cached ADD result"

    # containerd sends capability args with Go's field names, on ADD and on both DELs
    go_cased = [{"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]
    for call in rec.calls("portmap"):
        assert call.conf["runtimeConfig"] == {"portMappings": go_cased}

    # CNI_ARGS: the kubelet's pod identity plus IgnoreUnknown=1, keys in an order that varies between setups
    orders = set()
    for call in calls:
        assert set(call.args) == CRI_ARGS and call.args["IgnoreUnknown"] == "1"
        assert call.args["K8S_POD_INFRA_CONTAINER_ID"] == sandbox and call.args["K8S_POD_NAME"] == "web"
        orders.add(tuple(p.split("=", 1)[0] for p in call.env["CNI_ARGS"].split(";")))
    assert len(orders) > 1, "CNI_ARGS always in one order: %s" % orders

    # containerd's own environment reaches every plugin, the delegated IPAM plugin too
    assert {c.env.get(ENV_MARKER) for c in calls} == {node.name}
    assert {c.env.get("PYTHONHOME") for c in calls} == {HOSTILE_ENV["PYTHONHOME"]}
