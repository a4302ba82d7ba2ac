# SPDX-License-Identifier: GPL-3.0-or-later
"""The cni_node role's derived data: filter plugins (no logic in Jinja)."""

import base64
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nodenet.cni.plugins.filter.node_network import (
    agent_status,
    boot_sysctls,
    host_local_ranges,
    installed_runtime,
    node_addresses,
    node_changed,
    node_converged,
    node_current,
    node_table,
    packages_missing,
    peer_routes,
    plugin_runtime_dir,
    probe_addresses,
    probe_batch_targets,
    probe_failures,
    probe_hosts,
    probe_reference,
    probe_results,
    probe_targets,
    subnet_requests,
)
from ansible_collections.nodenet.cni.plugins.filter.pod_subnets import pod_subnets

DUAL = "10.244.0.0/16,fd00:10:244::/56"


def test_dual_stack_gives_each_node_one_subnet_per_family_in_cluster_order():
    out = pod_subnets({"n2": {}, "n1": {}}, DUAL, 24, 64)
    assert out["n1"]["subnets"] == ["10.244.0.0/24", "fd00:10:244::/64"]
    assert out["n2"]["subnets"] == ["10.244.1.0/24", "fd00:10:244:1::/64"]
    assert out["n1"]["gateways"] == ["10.244.0.1/24", "fd00:10:244::1/64"]
    assert out["n1"]["subnet"] == "10.244.0.0/24" and out["n1"]["source"] == "allocated"
    ipv6_first = pod_subnets({"n1": {}}, ["fd00:10:244::/56", "10.244.0.0/16"], 24, 64)
    assert ipv6_first["n1"]["subnets"] == ["fd00:10:244::/64", "10.244.0.0/24"]


def test_adding_ipv6_to_a_running_cluster_keeps_the_ipv4_subnets():
    out = pod_subnets({"a": {"persisted": "10.244.7.0/24\n"}, "b": {"persisted": "10.244.3.0/24"}}, DUAL, 24, 64)
    assert out["a"]["subnets"] == ["10.244.7.0/24", "fd00:10:244::/64"] and out["a"]["sources"] == ["persisted", "allocated"]
    assert out["b"]["subnets"] == ["10.244.3.0/24", "fd00:10:244:1::/64"]
    # and persisted dual-stack subnets are read back as written (one per line)
    again = pod_subnets({n: {"persisted": "\n".join(v["subnets"]) + "\n"} for n, v in out.items()}, DUAL, 24, 64)
    assert {n: v["subnets"] for n, v in again.items()} == {n: v["subnets"] for n, v in out.items()}


def test_single_stack_ipv6_cluster_uses_the_one_prefix_length():
    assert pod_subnets({"n1": {}}, "fd00:10:244::/56", 64)["n1"]["subnet"] == "fd00:10:244::/64"


@pytest.mark.parametrize(
    "cidr, nodes, words",
    [
        ("10.244.0.0/16,10.245.0.0/16", {}, "two IPv4 CIDRs"),
        ("", {}, "empty"),
        ("10.244.0.0/16", {"a": {"explicit": "fd00::/64"}}, "no IPv6 CIDR"),
        (DUAL, {"a": {"explicit": "10.244.1.0/24,10.244.2.0/24"}}, "two IPv4 subnets"),
        (DUAL, {"a": {"explicit": "fd00:10:244::/64"}, "b": {"persisted": "fd00:10:244::/64"}}, "a and b"),
    ],
)
def test_pod_subnet_errors_name_the_problem(cidr, nodes, words):
    with pytest.raises(AnsibleFilterError) as e:
        pod_subnets(nodes, cidr, 24, 64)
    assert words in str(e.value)


class HostVars(dict):
    """hostvars as a filter sees it: host -> that host's variables."""


def test_node_addresses_honour_cni_node_address_then_lab_then_ansible_host():
    hv = HostVars(
        a={"cni_node_address": "192.168.1.1, fd00::1", "node_address": "10.9.9.9"},
        b={"node_address": "172.31.250.2", "node_address_ipv6": "fd00:31:250::2"},
        c={"ansible_host": "192.168.1.3"},
        d={"cni_node_address": ["192.168.1.4"]},
    )
    assert node_addresses(["a", "b", "c", "d"], hv) == {
        "a": {"ipv4": "192.168.1.1", "ipv6": "fd00::1"},
        "b": {"ipv4": "172.31.250.2", "ipv6": "fd00:31:250::2"},
        "c": {"ipv4": "192.168.1.3"},
        "d": {"ipv4": "192.168.1.4"},
    }


def test_node_address_that_is_a_hostname_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="node1.example.*not an IP address.*cni_node_address"):
        node_addresses(["node1.example"], HostVars({"node1.example": {}}))


def test_peer_routes_go_via_each_peers_address_of_the_family():
    subnets = pod_subnets({"a": {}, "b": {}, "c": {}}, DUAL, 24, 64)
    addrs = {"a": {"ipv4": "172.31.250.1", "ipv6": "fd00:31:250::1"}, "b": {"ipv4": "172.31.250.2", "ipv6": "fd00:31:250::2"},
             "c": {"ipv4": "172.31.250.3", "ipv6": "fd00:31:250::3"}}
    assert peer_routes(subnets, "b", addrs) == [
        {"subnet": "10.244.0.0/24", "via": "172.31.250.1"},
        {"subnet": "fd00:10:244::/64", "via": "fd00:31:250::1"},
        {"subnet": "10.244.2.0/24", "via": "172.31.250.3"},
        {"subnet": "fd00:10:244:2::/64", "via": "fd00:31:250::3"},
    ]
    del addrs["c"]["ipv6"]
    with pytest.raises(AnsibleFilterError, match="node c has the ipv6 pod subnet fd00:10:244:2::/64 but no ipv6 address"):
        peer_routes(subnets, "a", addrs)


def test_subnet_requests_read_own_and_delegated_files_and_explicit():
    def read(text):
        return {"content": base64.b64encode(text.encode()).decode(), "failed": False}

    hv = HostVars(a={"cni_node_subnet_read": read("10.244.5.0/24\n")}, b={"cni_node_pod_subnet": "10.244.9.0/24"},
                  c={"cni_node_subnet_read": {"failed": True, "msg": "file not found"}}, d={})
    out = subnet_requests(["a", "b", "c", "d"], hv, [dict(read("10.244.6.0/24\n"), item="d")])
    assert out == {"a": {"explicit": "", "persisted": "10.244.5.0/24\n"}, "b": {"explicit": "10.244.9.0/24", "persisted": ""},
                   "c": {"explicit": "", "persisted": ""}, "d": {"explicit": "", "persisted": "10.244.6.0/24\n"}}


def test_subnet_requests_read_by_raw_cat():
    """What `raw: cat` registers: rc 0 and the file (over ssh with a tty, \r\n line ends), or rc 1 and
    cat's complaint (a tty merges stderr into stdout) when there is no file yet."""
    hv = HostVars(a={"cni_node_subnet_read": {"rc": 0, "stdout": "10.244.5.0/24\r\nfd00:10:244:5::/64\r\n", "failed": False}},
                  b={"cni_node_subnet_read": {"rc": 1, "stdout": "cat: /etc/nodenet/pod_subnet: No such file or directory\r\n",
                                              "failed": False}}, c={})
    out = subnet_requests(["a", "b", "c"], hv, [{"item": "c", "rc": 0, "stdout": "10.244.7.0/24\n", "failed": False}])
    assert out["b"]["persisted"] == "" and out["c"]["persisted"] == "10.244.7.0/24\n"
    subnets = pod_subnets(out, DUAL, 24, 64)
    assert subnets["a"]["subnets"] == ["10.244.5.0/24", "fd00:10:244:5::/64"] and subnets["c"]["subnets"][0] == "10.244.7.0/24"


def test_subnet_requests_skip_the_package_lookup_and_packages_missing_reads_it():
    """subnets.yml's read prints dpkg-query's "package <status> <name>" lines before the file:
    they are not subnets, and they are what packages_missing reads (over ssh with a tty, \r\n)."""
    stdout = ("package installed nftables\r\npackage installed iproute2\r\npackage not-installed python3\r\n"
              "10.244.5.0/24\r\nfd00:10:244:5::/64\r\n")
    read = {"rc": 0, "stdout": stdout, "failed": False}
    out = subnet_requests(["a"], HostVars(a={"cni_node_subnet_read": read}))
    assert out["a"]["persisted"] == "10.244.5.0/24\r\nfd00:10:244:5::/64\r\n"
    assert pod_subnets(out, DUAL, 24, 64)["a"]["subnets"] == ["10.244.5.0/24", "fd00:10:244:5::/64"]
    assert packages_missing(read, ["nftables", "iproute2", "python3"]) == ["python3"]
    assert packages_missing(read, ["iproute2", "nftables"]) == []
    # no file yet (rc 1): the look-up still counts; a package dpkg does not know prints no line: missing
    no_file = {"rc": 1, "stdout": "package installed nftables\ncat: /etc/nodenet/pod_subnet: No such file or directory\n"}
    assert subnet_requests(["a"], HostVars(a={"cni_node_subnet_read": no_file}))["a"]["persisted"] == ""
    assert packages_missing(no_file, ["nftables", "conntrack"]) == ["conntrack"]
    # no dpkg (no lines), or no look-up at all: every package goes to the package manager
    assert packages_missing({"rc": 0, "stdout": "10.244.5.0/24\n"}, ["nftables"]) == ["nftables"]
    assert packages_missing({}, ["nftables", "iproute2"]) == ["nftables", "iproute2"]


def test_host_local_ranges_one_range_set_per_family():
    entry = pod_subnets({"a": {}}, DUAL, 24, 64)["a"]
    assert host_local_ranges(entry) == [[{"subnet": "10.244.0.0/24", "gateway": "10.244.0.1"}],
                                        [{"subnet": "fd00:10:244::/64", "gateway": "fd00:10:244::1"}]]


def test_probe_addresses_targets_and_results():
    attached = {"result": {"ips": [{"address": "10.244.0.2/24", "gateway": "10.244.0.1"},
                                   {"address": "fd00:10:244::2/64", "gateway": "fd00:10:244::1"}]}}
    assert probe_addresses(attached) == {"ips": ["10.244.0.2", "fd00:10:244::2"], "gateways": ["10.244.0.1", "fd00:10:244::1"]}
    # site.yml's raw probe: the same result as JSON on stdout, one line
    line = json.dumps(dict(attached, changed=True, trace=[]))
    assert probe_addresses({"rc": 0, "stdout": line + "\n", "stdout_lines": [line]}) == probe_addresses(attached)
    # over SSH with a tty: stderr in stdout too, \r\n line ends
    merged = "a warning on stderr\r\n" + line + "\r\n"
    assert probe_addresses({"rc": 0, "stdout": merged, "stdout_lines": merged.splitlines()}) == probe_addresses(attached)
    assert probe_addresses({"rc": 0, "stdout": merged}) == probe_addresses(attached)
    # a module result with a command's output keeps its own "result"
    assert probe_addresses(dict(attached, stdout="PING ...")) == probe_addresses(attached)
    with pytest.raises(AnsibleFilterError, match="holds no attach result JSON"):
        probe_addresses({"rc": 0, "stdout": "Traceback (most recent call last):"})
    with pytest.raises(AnsibleFilterError, match="not the attach result JSON"):
        probe_addresses({"rc": 0, "stdout": '{"result": '})
    assert probe_addresses({"skipped": True}) == {"ips": [], "gateways": []}
    hv = HostVars(a={"cni_node_probe_ips": ["10.244.0.2"]}, b={"cni_node_probe_ips": ["10.244.1.2", "fd00:10:244:1::2"]})
    targets = probe_targets(["10.244.0.1"], ["a", "b"], hv, "a")
    assert targets == [{"name": "gateway", "ip": "10.244.0.1"}, {"name": "b", "ip": "10.244.1.2"}, {"name": "b", "ip": "fd00:10:244:1::2"}]
    lines = ["ok 10.244.1.2", "failed fd00:10:244:1::2", "ok 10.244.0.1"]  # in the order the answers came
    results = probe_results(lines, targets)
    assert results == {"gateway 10.244.0.1": True, "b 10.244.1.2": True, "b fd00:10:244:1::2": False}
    assert probe_failures(results) == ["b fd00:10:244:1::2"]
    # a target the task printed nothing for (it died early) did not answer
    assert probe_results(["ok 10.244.0.1"], targets) == {"gateway 10.244.0.1": True, "b 10.244.1.2": False, "b fd00:10:244:1::2": False}
    assert probe_results([], []) == {}


def test_probe_batch_targets_from_the_registered_attach_results():
    """site.yml's probe: own gateways, then the reference probe's addresses, as probe-ping's NAME=IP arguments."""
    own = {"rc": 0, "stdout": json.dumps({"result": {"ips": [{"address": "10.244.1.2/24", "gateway": "10.244.1.1"},
                                                             {"address": "fd00:10:244:1::2/64", "gateway": "fd00:10:244:1::1"}]}})}
    ref = {"changed": False, "result": {"ips": [{"address": "10.244.0.2/24", "gateway": "10.244.0.1"},
                                                {"address": "fd00:10:244::2/64", "gateway": "fd00:10:244::1"}]}}
    assert probe_batch_targets(own, "a", ref, "b") == ["gateway=10.244.1.1", "gateway=fd00:10:244:1::1", "a=10.244.0.2", "a=fd00:10:244::2"]
    # the reference itself pings only its gateways
    assert probe_batch_targets(own, "b", {}, "b") == ["gateway=10.244.1.1", "gateway=fd00:10:244:1::1"]
    # a reference attach that failed (its output no result) or was skipped gives no addresses, not an error
    assert probe_batch_targets(own, "a", {"failed": True, "rc": 1, "stdout": "Traceback"}, "b") == probe_batch_targets(own, "b", {}, "b")
    assert probe_batch_targets(own, "a", {"skipped": True}, "b") == probe_batch_targets(own, "b", {}, "b")
    with pytest.raises(AnsibleFilterError, match="holds no attach result JSON"):
        probe_batch_targets({"rc": 0, "stdout": "nothing"}, "a", ref, "b")


def test_probe_hosts_and_reference():
    """From the results the role registered: a node changed when the plugins, the packages or a node
    state part other than the persisted subnets and the boot files changed; converged when its
    converge task ran and passed."""
    unchanged = {"cni_node_plugin_install": {"changed": False}, "cni_node_packages_result": {"skipped": True, "changed": False},
                 "cni_node_state_result": {"changed": True, "changed_parts": ["pod_subnets", "boot"]}}
    hv = HostVars(a=unchanged, b=dict(unchanged, cni_node_plugin_install={"changed": True}),
                  c=dict(unchanged, cni_node_state_result={"changed": True, "changed_parts": ["bridge"]}),
                  d=dict(unchanged, cni_node_packages_result={"changed": True}), e={})
    assert probe_hosts(["a", "b", "c", "d"], hv, "changed") == ["b", "c", "d"]
    hv = HostVars(a=unchanged, b=dict(unchanged, cni_node_plugin_install={"changed": True}),
                  c=dict(unchanged, cni_node_state_result={"changed": True, "changed_parts": ["bridge"]}))
    assert probe_hosts(["a", "b", "c"], hv, "always") == ["a", "b", "c"]
    assert probe_hosts(["a", "b", "c"], hv, "never") == []
    with pytest.raises(AnsibleFilterError, match="changed, always or never"):
        probe_hosts(["a"], hv, "sometimes")
    # an unchanged converged node is the reference, so b and c are both checked across the node network
    assert probe_reference(["b", "c"], ["a", "b", "c"], hv) == "a"
    assert probe_reference(["a", "b", "c"], ["a", "b", "c"], hv) == "a"
    assert probe_reference([], ["a"], hv) == ""
    # a node whose converge task has not run yet (a later batch), was skipped or failed is no reference
    later = HostVars(x={}, y={"cni_node_state_result": {"skipped": True}}, z={"cni_node_state_result": {"failed": True}}, b=hv["b"])
    assert probe_reference(["b"], ["x", "y", "z", "b"], later) == "b"


def test_node_table_lists_addresses_subnets_and_probes():
    hv = HostVars(a={"node_address": "172.31.250.1", "node_address_ipv6": "fd00::1", "cni_node_probe_ips": ["10.244.0.2"],
                     "cni_node_subnet_read": {"content": base64.b64encode(b"10.244.0.0/24\nfd00:10:244::/64\n").decode()}})
    lines = node_table(["a"], hv)
    assert "172.31.250.1,fd00::1" in lines[1] and "10.244.0.0/24,fd00:10:244::/64" in lines[1] and "10.244.0.2" in lines[1]


def test_boot_sysctls_persist_forwarding_for_every_family_of_the_node():
    dual = pod_subnets({"n1": {}}, DUAL, 24, 64)["n1"]
    assert boot_sysctls({"net.ipv4.ip_forward": 1}, dual) == {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}
    v4 = pod_subnets({"n1": {}}, "10.244.0.0/16", 24)["n1"]
    assert boot_sysctls({}, v4) == {"net.ipv4.ip_forward": 1}
    # what the user set wins
    assert boot_sysctls({"net.ipv6.conf.all.forwarding": 0}, dual)["net.ipv6.conf.all.forwarding"] == 0


def test_agent_status_reads_the_last_json_line_and_is_empty_when_skipped():
    started = {"stdout_lines": ["started", '{"digest": "ab12", "running": true}']}
    assert agent_status(started) == {"digest": "ab12", "running": True}
    assert agent_status({"skipped": True, "changed": False}) == {}
    assert agent_status({"stdout_lines": ["would start"]}) == {}
    with pytest.raises(AnsibleFilterError, match="not JSON"):
        agent_status({"stdout_lines": ["{truncated"]})


CURRENT = {"changed": False, "current": True, "not_current": "", "plugin": {"changed": False, "runtime_dir": "/opt/cni/bin/.nodenet-cni/abc", "digest": "abc"}}


def test_a_node_the_check_found_current_is_converged_unchanged_and_a_reference():
    """site.yml's probe after the role skipped a current node's install, agent and converge
    tasks: only the check's result is registered there."""
    not_current = dict(CURRENT, current=False, not_current="state", plugin={})
    hv = HostVars(cur={"cni_node_check": CURRENT},
                  drifted={"cni_node_check": not_current, "cni_node_plugin_install": {"changed": False},
                           "cni_node_state_result": {"changed": True, "changed_parts": ["routes"]}},
                  agent={"cni_node_check": dict(not_current, not_current="agent"), "cni_node_plugin_install": {"changed": False},
                         "cni_node_agent_lab": {"changed": True}, "cni_node_state_result": {"changed": False, "changed_parts": []}},
                  systemd={"cni_node_agent_systemd_restarted": {"changed": True}},
                  skipped={"cni_node_check": {"skipped": True, "changed": False}}, failed={"cni_node_check": dict(CURRENT, failed=True)})
    assert node_current(CURRENT) and not node_current(not_current) and not node_current(None)
    assert not node_current(hv["skipped"]["cni_node_check"]) and not node_current(hv["failed"]["cni_node_check"])
    assert node_converged(hv["cur"]) and not node_changed(hv["cur"])
    assert not node_converged(hv["skipped"]) and not node_converged(hv["failed"])
    # the drifted nodes alone are probed (an agent the role restarted too), against the current one
    assert probe_hosts(["cur", "drifted", "agent", "systemd"], hv) == ["drifted", "agent", "systemd"]
    assert probe_reference(["drifted", "agent"], ["drifted", "agent", "cur"], hv) == "cur"


def test_installed_runtime_from_the_check_where_current_else_from_the_install_task():
    install = {"changed": True, "runtime_dir": "/opt/cni/bin/.nodenet-cni/new", "digest": "new"}
    assert installed_runtime(CURRENT, {}) == CURRENT["plugin"]
    # not current: the install task ran after the check, and its result is the one
    assert installed_runtime(dict(CURRENT, current=False, plugin={}), install) == install
    # skipped check (--diff, missing packages): the install task's
    assert installed_runtime({"skipped": True}, install) == install
    # neither ran (site.yml --tags probe), or the install task was skipped: nothing
    assert installed_runtime({}, {}) == {} and installed_runtime({}, {"skipped": True, "changed": False}) == {}
    assert installed_runtime(None, None) == {}


def test_plugin_runtime_dir_is_where_cni_plugin_installs_this_bundle():
    from ansible_collections.nodenet.cni.plugins.module_utils import install_check
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

    digest = installer.bundle_digest(installer.collect_sources())
    expected = install_check.plan({"bin_dir": ["/opt/cni/bin"]}, digest).rdir
    assert plugin_runtime_dir({"bin_dir": ["/opt/cni/bin"], "prefix": "nodenet-"}) == expected
    assert expected.startswith("/opt/cni/bin/.nodenet-cni/") and digest[:16] in expected
    assert plugin_runtime_dir({"bin_dir": ["/opt/cni/bin"], "lib_dir": "/var/lib/nodenet"}).startswith("/var/lib/nodenet/")
    # options only the module can judge: no runtime dir to predict
    assert plugin_runtime_dir({"bin_dir": ["~/bin"]}) == ""
