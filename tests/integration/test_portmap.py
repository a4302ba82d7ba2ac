# SPDX-License-Identifier: GPL-3.0-or-later
"""portmap chained after bridge + host-local, exec'd like a runtime, both backends.

Traffic: a TCP echo server in the pod; clients connect to the node's
gateway address on the host port, from the node itself (OUTPUT hook) and
from another pod (PREROUTING hook, through the bridge). All inside test
namespaces.
"""

import contextlib
import json
import os
import subprocess

import pytest
from cnitest import PONG_CLIENT, exec_plugin, pong_server

SERVER = pong_server(8)
CLIENT = PONG_CLIENT


@pytest.fixture(params=["nftables", "iptables"])
def backend(request):
    return request.param


def _conf(data_dir, name="pmnet"):
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "type": "nodenet-bridge",
        "bridge": "cni0",
        "isGateway": True,
        "ipam": {"type": "nodenet-host-local", "dataDir": data_dir, "ranges": [[{"subnet": "10.77.0.0/24"}]]},
    }


def _portmap_conf(name, backend, prev, mappings):
    conf = {"cniVersion": "1.0.0", "name": name, "type": "nodenet-portmap", "backend": backend,
            "capabilities": {"portMappings": True}, "prevResult": prev}
    if mappings is not None:
        conf["runtimeConfig"] = {"portMappings": mappings}
    return conf


def _ruleset(host):
    text = host.run(["nft", "list", "ruleset"]).stdout.decode() + host.run(["iptables-save", "-t", "nat"]).stdout.decode()
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))  # drop save timestamps


def _connect(ns, address, port):
    proc = ns.run(["python3", "-c", CLIENT, address, str(port)], check=False, timeout=15)
    return proc.stdout.decode().strip()


@contextlib.contextmanager
def _serving(ns):
    """SERVER on port 80 in `ns` for the body; killed after it, whatever happened."""
    server = subprocess.Popen(["ip", "netns", "exec", ns.name, "python3", "-c", SERVER], stdout=subprocess.PIPE)
    try:
        assert server.stdout.readline().strip() == b"ready"
        yield
    finally:
        server.kill()
        server.wait(timeout=10)


def test_portmap_forwards_host_port_and_del_removes_rules(backend, cni_bin, host_ns, netns_factory, data_dir):
    pod, client = netns_factory("pod"), netns_factory("cli")
    bridge, portmap = os.path.join(cni_bin, "nodenet-bridge"), os.path.join(cni_bin, "nodenet-portmap")
    conf = _conf(data_dir)
    res = exec_plugin(bridge, "ADD", conf, host=host_ns, netns=pod.path, container_id="pod1").ok().json
    exec_plugin(bridge, "ADD", conf, host=host_ns, netns=client.path, container_id="cli1").ok()
    mappings = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    pm = _portmap_conf("pmnet", backend, res, mappings)
    out = exec_plugin(portmap, "ADD", pm, host=host_ns, netns=pod.path, container_id="pod1").ok().json
    assert out["ips"] == res["ips"], "portmap must pass the previous result through"
    rules = _ruleset(host_ns)
    assert ("pod1" in rules) if backend == "nftables" else ("CNI-DN-" in rules)

    with _serving(pod):
        gateway = res["ips"][0]["gateway"]
        assert _connect(client, gateway, 8080) == "pong", "pod -> node:hostPort (PREROUTING)"
        assert _connect(host_ns, gateway, 8080) == "pong", "node -> its own address:hostPort (OUTPUT)"

    exec_plugin(portmap, "CHECK", pm, host=host_ns, netns=pod.path, container_id="pod1").ok()
    exec_plugin(portmap, "DEL", pm, host=host_ns, netns=pod.path, container_id="pod1").ok()
    rules = _ruleset(host_ns)
    assert "pod1" not in rules and "CNI-DN-" not in rules
    run = exec_plugin(portmap, "CHECK", pm, host=host_ns, netns=pod.path, container_id="pod1")
    assert run.rc != 0 and "missing" in run.json["msg"]
    exec_plugin(portmap, "DEL", pm, host=host_ns, netns=pod.path, container_id="pod1").ok()  # repeated DEL


def test_readd_does_not_duplicate_rules(backend, cni_bin, host_ns, container_ns, data_dir):
    bridge, portmap = os.path.join(cni_bin, "nodenet-bridge"), os.path.join(cni_bin, "nodenet-portmap")
    res = exec_plugin(bridge, "ADD", _conf(data_dir), host=host_ns, netns=container_ns.path, container_id="p2").ok().json
    pm = _portmap_conf("pmnet", backend, res, [{"hostPort": 9090, "containerPort": 90}])
    for _repeat in range(2):
        exec_plugin(portmap, "ADD", pm, host=host_ns, netns=container_ns.path, container_id="p2").ok()
    if backend == "nftables":
        listing = json.loads(host_ns.run(["nft", "-j", "list", "table", "ip", "cni_hostport"]).stdout)
        dnats = [o for o in listing["nftables"] if "rule" in o and o["rule"]["chain"] == "hostports"]
        assert len(dnats) == 1
    else:
        saved = host_ns.run(["iptables-save", "-t", "nat"]).stdout.decode().splitlines()
        assert len([line for line in saved if line.startswith("-A CNI-HOSTPORT-DNAT")]) == 1
        assert len([line for line in saved if line.startswith("-A PREROUTING") and "CNI-HOSTPORT-DNAT" in line]) == 1
    exec_plugin(portmap, "DEL", pm, host=host_ns, netns=container_ns.path, container_id="p2").ok()


@pytest.mark.parametrize(
    "conf_update, prev, code, words",
    [
        ({}, None, 7, "chained"),
        ({"runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}}, True, 7, "hostPort"),
        ({"runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 70000}]}}, True, 7, "containerPort"),
        ({"runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]}}, True, 7, "protocol"),
        ({"runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "nope"}]}}, True, 7, "hostIP"),
        ({"runtimeConfig": {"portMappings": {"hostPort": 80}}}, True, 7, "portMappings"),
        ({"markMasqBit": 40}, True, 7, "markMasqBit"),
        ({"backend": "nftables", "markMasqBit": 3}, True, 7, "iptables-specific"),
        ({"backend": "ebtables"}, True, 7, "backend"),
        ({"snat": "yes"}, True, 7, "snat"),
        ({"runtimeConfig": {"portMappings": [{"HostPort": "80", "ContainerPort": 80}]}}, True, 7, "portMappings[0].HostPort"),
        # a zone id once carried newlines into ip6tables-restore (issue 10 item 1)
        ({"runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "fe80::1%lo"}]}}, True, 7, "hostIP"),
        ({"runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "10.0.0.1\n"}]}}, True, 7, "hostIP"),
        ({"prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "fd00::5%lo/64"}]}}, None, 6, "prevResult.ips[0].address"),
    ],
)
def test_bad_input_is_rejected_and_changes_nothing(conf_update, prev, code, words, cni_bin, host_ns, container_ns):
    portmap = os.path.join(cni_bin, "nodenet-portmap")
    before = _ruleset(host_ns)
    prev_result = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": container_ns.path}],
                   "ips": [{"address": "10.77.0.9/24", "interface": 0}]}
    conf = {"cniVersion": "1.0.0", "name": "pmnet", "type": "nodenet-portmap",
            "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80}]}}
    if prev:
        conf["prevResult"] = prev_result
    conf.update(conf_update)
    run = exec_plugin(portmap, "ADD", conf, host=host_ns, netns=container_ns.path)
    assert run.rc != 0
    assert run.json["code"] == code and words in run.json["msg"]
    assert _ruleset(host_ns) == before


def test_no_mappings_passes_through_and_del_is_noop(cni_bin, host_ns, container_ns):
    portmap = os.path.join(cni_bin, "nodenet-portmap")
    prev = {"cniVersion": "0.4.0", "interfaces": [{"name": "eth0", "sandbox": container_ns.path}],
            "ips": [{"version": "4", "address": "10.77.0.9/24", "interface": 0}], "dns": {}}
    conf = {"cniVersion": "0.4.0", "name": "pmnet", "type": "nodenet-portmap", "prevResult": prev}
    out = exec_plugin(portmap, "ADD", conf, host=host_ns, netns=container_ns.path).ok().json
    assert out == prev
    exec_plugin(portmap, "DEL", conf, host=host_ns, netns=container_ns.path).ok()
    assert "cni_hostport" not in _ruleset(host_ns)


# -- what containerd sends (issue 7) -------------------------------------------

GO_CASED = [{"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]  # containerd/go-cni


def test_go_cased_port_mappings_from_containerd_forward_and_del_removes_them(backend, cni_bin, host_ns, container_ns, data_dir):
    bridge, portmap = os.path.join(cni_bin, "nodenet-bridge"), os.path.join(cni_bin, "nodenet-portmap")
    res = exec_plugin(bridge, "ADD", _conf(data_dir), host=host_ns, netns=container_ns.path, container_id="gocase").ok().json
    pm = _portmap_conf("pmnet", backend, res, GO_CASED)
    exec_plugin(portmap, "ADD", pm, host=host_ns, netns=container_ns.path, container_id="gocase").ok()
    assert "18080" in _ruleset(host_ns)
    with _serving(container_ns):
        assert _connect(host_ns, res["ips"][0]["gateway"], 18080) == "pong"
    exec_plugin(portmap, "CHECK", pm, host=host_ns, netns=container_ns.path, container_id="gocase").ok()
    exec_plugin(portmap, "DEL", pm, host=host_ns, netns=container_ns.path, container_id="gocase").ok()
    rules = _ruleset(host_ns)
    assert "18080" not in rules and "gocase" not in rules
    exec_plugin(bridge, "DEL", _conf(data_dir), host=host_ns, netns=container_ns.path, container_id="gocase").ok()


def test_snat_and_masq_all_null_mean_the_defaults_like_go(cni_bin, host_ns, container_ns):
    portmap = os.path.join(cni_bin, "nodenet-portmap")
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": container_ns.path}],
            "ips": [{"address": "10.77.0.9/24", "interface": 0}]}
    pm = dict(_portmap_conf("pmnet", "nftables", prev, [{"hostPort": 8081, "containerPort": 80}]), snat=None, masqAll=None)
    exec_plugin(portmap, "ADD", pm, host=host_ns, netns=container_ns.path, container_id="nulls").ok()
    assert "masquerade" in _ruleset(host_ns), "snat: null is Go's default, true"
    exec_plugin(portmap, "DEL", pm, host=host_ns, netns=container_ns.path, container_id="nulls").ok()
    assert "nulls" not in _ruleset(host_ns)


@pytest.mark.parametrize(
    "broken",
    [
        {"prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "garbage"}]}},
        {"runtimeConfig": {"portMappings": [{"hostPort": "eighty", "containerPort": 80}]}},
        {"runtimeConfig": {"portMappings": "nope"}},
        {"runtimeConfig": "nope"},
    ],
)
def test_del_with_args_that_do_not_parse_still_removes_the_rules_and_succeeds(broken, backend, cni_bin, host_ns, container_ns):
    """libcni stops a DEL chain at the first failing plugin: a failing portmap DEL leaks bridge and host-local."""
    portmap = os.path.join(cni_bin, "nodenet-portmap")
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": container_ns.path}],
            "ips": [{"address": "10.77.0.9/24", "interface": 0}]}
    pm = _portmap_conf("pmnet", backend, prev, [{"hostPort": 8082, "containerPort": 80}])
    exec_plugin(portmap, "ADD", pm, host=host_ns, netns=container_ns.path, container_id="brokendel").ok()
    assert "8082" in _ruleset(host_ns)
    exec_plugin(portmap, "DEL", dict(pm, **broken), host=host_ns, netns=container_ns.path, container_id="brokendel").ok()
    rules = _ruleset(host_ns)
    assert "8082" not in rules and "brokendel" not in rules


def test_containerd_second_del_and_the_callers_own_netns_succeed(cni_bin, host_ns, container_ns):
    """RemovePodSandbox: DEL again with empty CNI_NETNS and no prevResult; portmap never enters the netns."""
    portmap = os.path.join(cni_bin, "nodenet-portmap")
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": container_ns.path}],
            "ips": [{"address": "10.77.0.9/24", "interface": 0}]}
    pm = _portmap_conf("pmnet", "nftables", prev, GO_CASED)
    exec_plugin(portmap, "ADD", pm, host=host_ns, netns=container_ns.path, container_id="twodel").ok()
    exec_plugin(portmap, "DEL", pm, host=host_ns, netns="/proc/self/ns/net", container_id="twodel").ok()
    assert "twodel" not in _ruleset(host_ns)
    no_prev = {k: v for k, v in pm.items() if k != "prevResult"}
    exec_plugin(portmap, "DEL", no_prev, host=host_ns, netns="", container_id="twodel").ok()
