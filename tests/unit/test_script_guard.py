# SPDX-License-Identifier: GPL-3.0-or-later
"""The script guard (net/nftcmd safe_* and the whole-script checks): every
string that reaches an nft or ip(6)tables-restore script, handed hostile
values directly, without the config readers in front (issue 10 item 1)."""

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import NetConf
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.portmap import PortMapConf, PortMapping
from ansible_collections.nodenet.cni.plugins.module_utils.cni.names import ifname_problem
from ansible_collections.nodenet.cni.plugins.module_utils.cni.net import hostport, ipmasq, nftcmd
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

INJECT = "\nCOMMIT\n*filter\n-I INPUT 1 -j ACCEPT\nCOMMIT\n*nat\n-A X"
HOSTILE = [
    "fe80::1%lo" + INJECT,
    "fe80::1%lo",
    "10.0.0.1\n",
    " 10.0.0.1",
    "10.0.0.1\x00",
    "10.0.0.1;add rule ip filter input accept",
    "",
    "0x0a.1.1.1",
    "ａ.b",
    None,
    12,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_address_refuses_zone_ids_newlines_and_non_addresses(value):
    with pytest.raises(CNIError):
        nftcmd.safe_address(value, "hostIP")


def test_safe_address_answers_the_canonical_spelling():
    assert nftcmd.safe_address("FD00:0::05", "a") == "fd00::5"
    assert nftcmd.safe_interface("fd00:0::5/64", "a") == ("fd00::5", "fd00::/64", 64)


@pytest.mark.parametrize("value", ["c1\n", "c1\nCOMMIT", "-c", "c 1", 'c"', "c;1", "", "é", "c\x00"])
def test_safe_name_is_a_full_match(value):
    with pytest.raises(CNIError):
        nftcmd.safe_name(value, "CNI_CONTAINERID")


@pytest.mark.parametrize("value", ["KUBE-MARK\n", "A" * 29, "a b", "-j", "X;Y"])
def test_safe_chain_refuses(value):
    with pytest.raises(CNIError):
        nftcmd.safe_chain(value, "externalSetMarkChain")


@pytest.mark.parametrize(
    "backend,value",
    [
        ("nftables", 'ip saddr 1.2.3.4 ; add rule ip filter input accept'),
        ("nftables", "ip saddr 1.2.3.4 # comment"),
        ("nftables", 'meta mark "x"'),
        ("nftables", "ip saddr 1.2.3.4\nadd rule"),
        ("iptables", '-s 1.2.3.4\nCOMMIT'),
        ("iptables", '-m comment --comment "unbalanced'),
        ("iptables", "-s 1.2.3.4 \\"),
        ("iptables", ""),
    ],
)
def test_safe_condition_refuses_what_ends_a_rule(backend, value):
    with pytest.raises(CNIError):
        nftcmd.safe_condition(backend, value, "conditionsV4[0]")


def test_safe_condition_accepts_real_conditions():
    assert nftcmd.safe_condition("nftables", "ip saddr != { 10.0.0.0/8, 192.168.0.0/16 }", "c")
    assert nftcmd.safe_condition("iptables", '! -s 10.0.0.0/8 -m comment --comment "keep me"', "c")


def test_ifname_is_counted_in_bytes():
    assert ifname_problem("e" * 15) is None
    assert ifname_problem("é" * 8) is not None  # 8 characters, 16 bytes
    assert ifname_problem("eth\n0") is not None


@pytest.mark.parametrize(
    "script",
    [
        "add rule ip cni_hostport hostports tcp dport 80 dnat to 1.2.3.4:80\nadd rule ip filter input accept\n",
        "add rule ip cni_hostport hostports tcp dport 80 ; add rule ip filter input accept\n",
        "add rule ip cni_hostport hostports tcp dport 80 # x\n",
        'add rule ip cni_hostport hostports comment "a" accept comment "b\\"\n',
        "flush ruleset\n",
        "add rule ip cni_hostport hostports tcp dport 80\r\n",
    ],
)
def test_nft_script_check_refuses_lines_outside_the_grammar(script):
    with pytest.raises(nftcmd.UnsafeScript):
        nftcmd.check_nft_script(script)


def test_nft_script_check_accepts_what_we_write():
    nftcmd.check_nft_script(
        "add table ip cni_hostport\n"
        "add chain ip cni_hostport prerouting { type nat hook prerouting priority -100 ; }\n"
        'add rule inet cni_plugins_masquerade masq_checks ip saddr 10.0.0.5 ip daddr != 10.0.0.0/24 masquerade comment "h-h, net: n, if: eth0, id: c"\n'
        "delete rule ip cni_hostport hostports handle 7\n"
    )


@pytest.mark.parametrize(
    "lines",
    [
        ["*nat", "-A X -d ::1", "COMMIT", "*filter", "-I INPUT 1 -j ACCEPT", "COMMIT"],
        ["*nat", "-A X -d fe80::1%lo\nCOMMIT", "COMMIT"],
        ["*filter", "-A INPUT -j ACCEPT", "COMMIT"],
        ["*nat", "-A X -m comment --comment \"open", "COMMIT"],
        ["*nat", "INPUT -j ACCEPT", "COMMIT"],
        ["*nat", "-A X -j ACCEPT"],
    ],
)
def test_restore_check_refuses_other_tables_and_broken_lines(lines):
    with pytest.raises(nftcmd.UnsafeScript):
        nftcmd.check_restore_lines(lines)


@pytest.fixture(autouse=True)
def _private_rules_lock(monkeypatch, tmp_path):
    """The writers take the node's rules lock; a test takes its own, never /run's (and runs without root)."""
    monkeypatch.setattr(nftcmd, "RULES_LOCK", str(tmp_path / "rules.lock"))


class _Recorder:
    """Stands in for the nft / iptables commands: records what would have run."""

    def __init__(self, monkeypatch):
        self.scripts = []
        monkeypatch.setattr(nftcmd, "nft_list", lambda *a: None)
        monkeypatch.setattr(nftcmd, "iptables_save", lambda family, table: ["*nat", ":PREROUTING ACCEPT [0:0]", "COMMIT"])
        monkeypatch.setattr(nftcmd, "run_tool", self._run)

    def _run(self, argv, stdin=""):
        self.scripts.append(stdin)

        class Proc:
            returncode = 0
            stdout = b""
            stderr = b""

        return Proc()


def _pm(host_ip="", conds=(), ext="", backend="iptables", name="pm"):
    net = NetConf(cni_version="1.0.0", name=name, type="portmap", raw={})
    return PortMapConf(
        net=net,
        backend=backend,
        external_set_mark_chain=ext,
        conditions_v4=list(conds),
        conditions_v6=list(conds),
        mappings=[PortMapping(host_port=8080, container_port=80, protocol="tcp", host_ip=host_ip)],
    )


@pytest.mark.parametrize("setup", [hostport.ipt_setup, hostport.nft_setup])
@pytest.mark.parametrize(
    "pm,cid,address",
    [
        (lambda b: _pm(host_ip="fe80::1%lo" + INJECT, backend=b), "c1", "fd00::5"),
        (lambda b: _pm(backend=b), "c1\nCOMMIT", "fd00::5"),
        (lambda b: _pm(backend=b), "c1", "fd00::5%lo" + INJECT),
        (lambda b: _pm(backend=b, conds=["-s ::1" + INJECT if b == "iptables" else "ip6 saddr ::1" + INJECT]), "c1", "fd00::5"),
        (lambda b: _pm(backend=b, ext="KUBE" + INJECT), "c1", "fd00::5"),
        (lambda b: _pm(backend=b, name="pm" + INJECT), "c1", "fd00::5"),
    ],
)
def test_hostport_writers_refuse_hostile_values_handed_directly(monkeypatch, setup, pm, cid, address):
    rec = _Recorder(monkeypatch)
    backend = "iptables" if setup is hostport.ipt_setup else "nftables"
    with pytest.raises(CNIError):
        setup(pm(backend), cid, [hostport.Target(family=6, address=address, prefixlen=64)])
    assert rec.scripts == [], "nothing may run"


def test_hostport_writes_canonical_addresses(monkeypatch):
    rec = _Recorder(monkeypatch)
    hostport.ipt_setup(_pm(host_ip="FD00:0::1"), "c1", [hostport.Target(family=6, address="FD00::0005", prefixlen=64)])
    script = rec.scripts[-1]
    assert "-d fd00::1 " in script and "[fd00::5]:80" in script
    nftcmd.check_restore_lines(script.rstrip("\n").split("\n"))


@pytest.mark.parametrize(
    "args",
    [
        (["10.0.0.5/24"], "net\nx", "eth0", "c1"),
        (["10.0.0.5/24"], "net", "eth0\n", "c1"),
        (["10.0.0.5/24"], "net", 'et"h0', "c1"),
        (["10.0.0.5/24"], "net", "eth0", "c1\n"),
        (["10.0.0.5%lo/24"], "net", "eth0", "c1"),
        (["10.0.0.5/24\nCOMMIT"], "net", "eth0", "c1"),
    ],
)
@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_ipmasq_writers_refuse_hostile_values_handed_directly(monkeypatch, backend, args):
    rec = _Recorder(monkeypatch)
    cidrs, network, ifname, cid = args
    with pytest.raises(CNIError):
        ipmasq.setup_ipmasq(backend, cidrs, network, ifname, cid)
    assert rec.scripts == []
