# SPDX-License-Identifier: GPL-3.0-or-later
"""Pods through containerd's CRI, as a kubelet runs them: RunPodSandbox -> containerd -> libcni -> plugins.

A private containerd (tests/integration/cri) runs in a network namespace
made by the test; the conflist is what kubelet nodes use (bridge +
host-local, portmap with `capabilities.portMappings`). Each test runs with
our plugins ("py", on the node's python3) and with Debian's Go reference
plugins ("go"), the control: the same test must pass with both.
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from cri.api import SANDBOX_READY, CRIError
from cri.checks import PodServer, cache_entries, connect, extra_links, leases, ping_from_pod, ruleset
from cri.node import NODE_IP, POD_GATEWAY, POD_SUBNET, ContainerdNode, missing_tools

HOST_PORT = 18080
pytestmark = pytest.mark.skipif(bool(missing_tools()), reason="needs %s (apt: containerd runc busybox-static; make setup)" % " ".join(missing_tools()))


@pytest.fixture(params=["py", "go"])
def impl(request) -> str:
    return request.param


@pytest.fixture
def node(request, impl):
    with ContainerdNode("crinode", request.getfixturevalue("cni_bin" if impl == "py" else "go_bin")) as made:
        yield made


def assert_pod_gone(node: ContainerdNode, sandbox_id: str, ip: str) -> None:
    """After StopPodSandbox + RemovePodSandbox: nothing on the node remembers the pod."""
    assert sandbox_id not in [s.id for s in node.client.list_pod_sandbox()]
    assert ip not in leases(node), "lease of %s leaked" % ip
    assert [e for e in cache_entries(node) if sandbox_id in e] == [], "libcni cache entry leaked"
    rules = ruleset(node)
    assert re.search(r"\b%s\b" % re.escape(ip), rules) is None, "a rule names the pod address %s:\n%s" % (ip, rules)
    assert sandbox_id not in rules, "a rule names the sandbox id:\n%s" % rules


def test_two_pods_run_talk_and_leave_nothing_behind(node):
    """A pod with a hostPort and one without, as a kubelet starts and removes them."""
    web = node.run_pod("web", port_mappings=[{"container_port": 80, "host_port": HOST_PORT, "protocol": "tcp"}])
    client = node.run_pod("client")
    assert re.fullmatch(r"[0-9a-f]{64}", web) and re.fullmatch(r"[0-9a-f]{64}", client)

    pods = {sid: node.pod_info(sid) for sid in (web, client)}
    for sid, info in pods.items():
        assert info["state"] == SANDBOX_READY, "sandbox %s not ready" % sid
        assert ipaddress.ip_address(info["ip"]) in ipaddress.ip_network(POD_SUBNET)
    web_ip, client_ip = pods[web]["ip"], pods[client]["ip"]
    assert web_ip != client_ip

    # what the plugins left on the node while the pods live (so the checks after removal can fail)
    assert sorted(leases(node)) == sorted([web_ip, client_ip])
    assert len(extra_links(node)) == 2, "one host veth per pod: %s" % extra_links(node)
    assert len([e for e in cache_entries(node) if web in e or client in e]) >= 2, cache_entries(node)
    assert web_ip in ruleset(node), "ipMasq rule for the pod address"

    for sid in (web, client):
        assert ping_from_pod(node, sid, POD_GATEWAY), "pod %s cannot ping its gateway" % sid
    assert ping_from_pod(node, client, web_ip), "pod to pod over the bridge"

    with PodServer(node, web):
        node_ns = ["nsenter", "--net=" + node.netns.path]
        assert connect(node_ns, NODE_IP, HOST_PORT) == "pong", "node address:hostPort from the node (OUTPUT)"
        client_ns = ["nsenter", "--net=" + node.pod_netns(client)]
        assert connect(client_ns, NODE_IP, HOST_PORT) == "pong", "node address:hostPort from another pod (PREROUTING)"

    for sid in (web, client):
        node.remove_pod(sid)  # StopPodSandbox + RemovePodSandbox: a failing DEL fails here
    assert node.client.list_pod_sandbox() == []
    assert leases(node) == [] and extra_links(node) == []
    assert_pod_gone(node, web, web_ip)
    assert_pod_gone(node, client, client_ip)


def test_failed_add_is_undone_by_containerds_del(node, impl):
    """portmap refuses a host port above 65535; containerd then DELs the chain, and that DEL must clean up.

    libcni stops a DEL chain at the first plugin that fails (portmap runs first
    on DEL), so a portmap DEL that fails on the same bad argument strands the
    bridge's veth and masquerade rule, host-local's lease, and the sandbox.
    """
    with pytest.raises(CRIError) as failed:
        node.run_pod("badport", port_mappings=[{"container_port": 80, "host_port": 70000}])
    assert 'plugin type="portmap" failed (add)' in failed.value.details and "70000" in failed.value.details
    if impl == "py":  # ours refuses it before touching the firewall, naming the field as containerd spelled it
        assert "runtimeConfig.portMappings[0].HostPort" in failed.value.details, failed.value.details
    left = node.client.list_pod_sandbox()
    assert left == [], "sandbox left behind (its DEL failed?): %s\n%s" % ([s.id for s in left], node.log_tail(5))
    assert leases(node) == [] and extra_links(node) == []
    assert cache_entries(node) == []
    rules = ruleset(node)
    assert re.search(r"\b10\.99\.0\.\d+\b", rules) is None, "a rule names a pod address:\n%s" % rules
