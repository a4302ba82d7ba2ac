# SPDX-License-Identifier: GPL-3.0-or-later
"""bridge mixed with the Go reference plugins (Debian's containernetworking-plugins 1.1.1).

Each pair delegates IPAM across languages with the identical stdin, so a
node can run either implementation of either plugin. Also: both bridges
read and clean up each other's ipMasq rules, and the reference bugs we fix
are shown on the installed reference itself.
"""

from __future__ import annotations

import os

import pytest
from bridgetest import (
    GO_VERSIONS,
    Bridge,
    addresses,
    bridge_conf,
    cni_chains,
    default_routes,
    host_local,
    iptables_nat,
    leases,
    link_names,
    link_names_eventually,
    plugin_speaks,
    shows_result,
)

V4 = [{"subnet": "10.22.0.0/24"}]


@pytest.fixture
def py_host_local(cni_bin):
    if not plugin_speaks(os.path.join(cni_bin, "host-local")):
        pytest.skip("Python host-local is not available")


def pair(mixed_bin, host_ns, bridge_impl, ipam_impl) -> Bridge:
    bin_dir = mixed_bin({"bridge": bridge_impl, "host-local": ipam_impl})
    return Bridge(os.path.join(bin_dir, "bridge"), host_ns, bin_dir)


def life_cycle(bridge, version, host_ns, netns_factory, data_dir, reference):
    conf = bridge_conf(version, host_local("host-local", data_dir, V4), type="bridge", isDefaultGateway=True)
    c1, c2 = netns_factory("mix1"), netns_factory("mix2")
    r1 = bridge.add(conf, c1, container_id="mix-one")
    r2 = bridge.add(conf, c2, container_id="mix-two")
    ip1 = shows_result(version, r1, c1, host_ns, reference=reference)
    ip2 = shows_result(version, r2, c2, host_ns, reference=reference)
    assert [ip1, ip2] == ["10.22.0.2/24", "10.22.0.3/24"]
    assert leases(data_dir) == ["10.22.0.2", "10.22.0.3"]
    assert addresses(c1, "eth0") == [ip1] and default_routes(c1) == [("0.0.0.0/0", "10.22.0.1")]
    assert addresses(host_ns, "cni0", 4) == ["10.22.0.1/24"]
    assert c1.ping("10.22.0.3")
    if version >= "0.4.0":
        bridge.check(conf, c1, r1, container_id="mix-one").ok()
    bridge.delete(conf, c1, r1, container_id="mix-one").ok()
    gone = c2.path
    c2.delete()
    bridge.delete(conf, prev=r2, netns=gone, container_id="mix-two").ok()
    assert leases(data_dir) == []
    assert link_names_eventually(host_ns, ["cni0", "lo"]) == ["cni0", "lo"] and link_names(c1) == ["lo"]


@pytest.mark.parametrize("version", ["0.3.1", GO_VERSIONS[-1]])
def test_python_bridge_with_go_host_local(version, mixed_bin, host_ns, netns_factory, data_dir):
    life_cycle(pair(mixed_bin, host_ns, "py", "go"), version, host_ns, netns_factory, data_dir, reference=False)


@pytest.mark.parametrize("version", ["0.3.1", GO_VERSIONS[-1]])
def test_go_bridge_with_python_host_local(version, py_host_local, mixed_bin, host_ns, netns_factory, data_dir):
    life_cycle(pair(mixed_bin, host_ns, "go", "py"), version, host_ns, netns_factory, data_dir, reference=True)


def test_each_bridge_removes_the_others_iptables_masquerading(mixed_bin, host_ns, netns_factory, data_dir):
    """Same chain name and comment as the reference: an upgrade or downgrade leaks no rules."""
    go, py = pair(mixed_bin, host_ns, "go", "go"), pair(mixed_bin, host_ns, "py", "go")
    conf = bridge_conf("1.0.0", host_local("host-local", data_dir, V4), type="bridge", isGateway=True, ipMasq=True)

    ctr = netns_factory("go-add")
    go.add(conf, ctr, container_id="by-go")  # Go 1.1.1 knows only iptables
    assert len(cni_chains(iptables_nat(host_ns))) == 1
    gone = ctr.path
    ctr.delete()
    py.delete(conf, netns=gone, container_id="by-go").ok()  # Go itself would leak here (plugins#810)
    assert cni_chains(iptables_nat(host_ns)) == [] and not any("POSTROUTING -s" in line for line in iptables_nat(host_ns))

    ctr = netns_factory("py-add")
    py.add(dict(conf, ipMasqBackend="iptables"), ctr, container_id="by-py")
    assert len(cni_chains(iptables_nat(host_ns))) == 1
    go.delete(conf, ctr, container_id="by-py").ok()
    assert cni_chains(iptables_nat(host_ns)) == [] and not any("POSTROUTING -s" in line for line in iptables_nat(host_ns))
    assert leases(data_dir) == []


# ---------------------------------------------------------------------------
# the reference bugs we fix, shown on the installed reference


def test_seed_config_fails_on_the_reference_and_leaves_its_veth(mixed_bin, host_ns, container_ns, tmp_path):
    go = pair(mixed_bin, host_ns, "go", "go")
    conf = bridge_conf(
        "0.3.1",
        {"type": "host-local", "subnet": "10.13.0.0/22", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(tmp_path / "d")},
        name="mynet",
        type="bridge",
        isDefaultGateway=True,
    )
    run = go("ADD", conf, container_ns)
    if run.rc == 0:
        pytest.skip("the installed reference no longer has the duplicate default route bug")
    assert "file exists" in run.json["msg"]
    # ...and a failed reference ADD leaves the veth for the runtime's DEL (ours removes it)
    assert "eth0" in link_names(container_ns)


def test_l2_check_fails_on_the_reference(mixed_bin, host_ns, container_ns):
    go = pair(mixed_bin, host_ns, "go", "go")
    conf = bridge_conf("1.0.0", None, type="bridge")
    res = go.add(conf, container_ns)
    run = go.check(conf, container_ns, res)
    if run.rc == 0:
        pytest.skip("the installed reference can CHECK an L2 bridge now")
    assert "no plugin name provided" in run.json["msg"]
