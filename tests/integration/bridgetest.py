# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the bridge tests: which IPAM to pair with, configs, reading state back.

State is read with pyroute2 (`ns.ipr()`) and with nft/iptables run inside
the test's host namespace; nothing here touches the root namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from cnitest import NetNS, PluginRun, exec_plugin

VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
GO_PLUGIN_DIR = "/usr/lib/cni"
# Debian's containernetworking-plugins 1.1.1 speak up to 1.0.0
GO_VERSIONS = VERSIONS[:-1]


@dataclass
class Ipam:
    """The host-local IPAM a bridge test delegates to: its type, the CNI_PATH that finds it, its versions."""

    type: str
    cni_path: str
    versions: List[str]
    impl: str  # "py" or "go"


def plugin_speaks(path: str) -> bool:
    """True if the plugin answers VERSION (our launcher fails if its module is not written yet)."""
    if not os.path.isfile(path):
        return False
    env = {"CNI_COMMAND": "VERSION", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.run([path], input=b'{"cniVersion":"1.0.0"}', env=env, capture_output=True, timeout=30, check=False)
    return proc.returncode == 0 and b"supportedVersions" in proc.stdout


def choose_ipam(cni_bin: str) -> Optional[Ipam]:
    """Python host-local once it exists (NODENET_TEST_IPAM=go forces Go), else Go host-local."""
    forced = os.environ.get("NODENET_TEST_IPAM", "")
    if forced != "go" and plugin_speaks(os.path.join(cni_bin, "nodenet-host-local")):
        return Ipam("nodenet-host-local", cni_bin, list(VERSIONS), "py")
    if forced != "py" and os.path.isfile(os.path.join(GO_PLUGIN_DIR, "host-local")):
        return Ipam("host-local", GO_PLUGIN_DIR, list(GO_VERSIONS), "go")
    return None


def host_local(ipam_type: str, data_dir: str, *range_sets: List[Dict[str, str]], routes: Optional[List[Dict[str, str]]] = None) -> Dict[str, Any]:
    conf: Dict[str, Any] = {"type": ipam_type, "dataDir": data_dir, "ranges": [list(rs) for rs in range_sets]}
    if routes is not None:
        conf["routes"] = routes
    return conf


def bridge_conf(version: str, ipam: Optional[Dict[str, Any]], name: str = "testnet", **options: Any) -> Dict[str, Any]:
    conf: Dict[str, Any] = {"cniVersion": version, "name": name, "type": "nodenet-bridge", "bridge": "cni0"}
    if ipam is not None:
        conf["ipam"] = ipam
    conf.update(options)
    return conf


class Bridge:
    """Exec the bridge plugin like a runtime, inside the test host namespace."""

    def __init__(self, plugin: str, host: NetNS, cni_path: str) -> None:
        self.plugin = plugin
        self.host = host
        self.cni_path = cni_path

    def __call__(self, command: str, conf: Optional[Dict[str, Any]], ctr: Optional[NetNS] = None, **kw: Any) -> PluginRun:
        kw.setdefault("netns", ctr.path if ctr is not None else "")
        kw.setdefault("cni_path", self.cni_path)
        return exec_plugin(self.plugin, command, conf, host=self.host, **kw)

    def add(self, conf, ctr, **kw) -> Dict[str, Any]:
        return self("ADD", conf, ctr, **kw).ok().json

    def check(self, conf, ctr, prev, **kw) -> PluginRun:
        return self("CHECK", dict(conf, prevResult=prev), ctr, **kw)

    def delete(self, conf, ctr=None, prev=None, **kw) -> PluginRun:
        data = dict(conf, prevResult=prev) if prev is not None else conf
        return self("DEL", data, ctr, **kw)


def shows_result(version, res, ctr, host_ns, gateway="10.22.0.1", reference=False):
    """Assert the result's shape for `version` and that it describes the live links; return the address.

    `reference`: a result of the Go bridge 1.1.1, which prints `"dns": {}` in 1.x
    results and may report a host veth MAC from before the port joined (plugins#805).
    """
    assert res["cniVersion"] == version
    if version in ("0.1.0", "0.2.0"):
        assert set(res) <= {"cniVersion", "ip4", "ip6", "dns"}
        assert res["ip4"]["gateway"] == gateway
        assert {"dst": "0.0.0.0/0", "gw": gateway} in res["ip4"]["routes"]
        return res["ip4"]["ip"]
    names = [i["name"] for i in res["interfaces"]]
    assert names[0] == "cni0" and names[2] == "eth0"
    assert names[1].startswith("veth") and len(names[1]) == 12
    assert res["interfaces"][2]["sandbox"] == ctr.path
    assert "sandbox" not in res["interfaces"][0] and "sandbox" not in res["interfaces"][1]
    assert res["interfaces"][0]["mac"] == link_mac(host_ns, "cni0")
    if not reference:
        assert res["interfaces"][1]["mac"] == link_mac(host_ns, names[1])
    assert res["interfaces"][2]["mac"] == link_mac(ctr, "eth0")
    (ip,) = res["ips"]
    assert ip["interface"] == 2 and ip["gateway"] == gateway
    assert ("version" in ip) == (version < "1.0.0")
    if version < "1.0.0":
        assert ip["version"] == "4"
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": gateway}]
    # libcni >= 1.2 omits an empty dns from 1.x results; 0.3/0.4 print "dns": {}
    assert ("dns" in res) == (version < "1.0.0" or reference)
    return ip["address"]


# ---------------------------------------------------------------------------
# reading state


def link_names(ns: NetNS) -> List[str]:
    with ns.ipr() as ipr:
        return sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links())


def get_link(ns: NetNS, name: str):
    with ns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
        return ipr.get_links(idx[0])[0] if idx else None


def link_mac(ns: NetNS, name: str) -> str:
    return get_link(ns, name).get_attr("IFLA_ADDRESS")


def addresses(ns: NetNS, name: str, family: int = 0) -> List[str]:
    """Global addresses of `name` as CIDR strings."""
    fam = {4: 2, 6: 10}.get(family, 0)
    with ns.ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)[0]
        out = []
        for msg in ipr.get_addr(family=fam, index=idx):
            if msg["index"] == idx and msg["scope"] == 0:
                out.append("%s/%d" % (msg.get_attr("IFA_ADDRESS"), msg["prefixlen"]))
        return out


def routes(ns: NetNS, family: int = 4) -> List[Tuple[str, str]]:
    """(dst, gateway) of the main table's unicast routes, dst in CIDR form."""
    fam = {4: 2, 6: 10}[family]
    out = []
    with ns.ipr() as ipr:
        for msg in ipr.get_routes(family=fam, table=254):
            if msg["type"] != 1:
                continue
            dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == 4 else "::")
            out.append(("%s/%d" % (dst, msg["dst_len"]), msg.get_attr("RTA_GATEWAY") or ""))
    return out


def default_routes(ns: NetNS, family: int = 4) -> List[Tuple[str, str]]:
    return [r for r in routes(ns, family) if r[0].endswith("/0")]


def nft_ruleset(host: NetNS) -> List[Dict[str, Any]]:
    out = host.run(["nft", "-j", "list", "ruleset"]).stdout
    return [o for o in json.loads(out)["nftables"] if "metainfo" not in o]


def nft_masq_comments(host: NetNS) -> List[str]:
    return [
        o["rule"].get("comment", "")
        for o in nft_ruleset(host)
        if "rule" in o and o["rule"]["table"] == "cni_plugins_masquerade" and o["rule"]["chain"] == "masq_checks"
    ]


def iptables_nat(host: NetNS, family: int = 4) -> List[str]:
    tool = "iptables-save" if family == 4 else "ip6tables-save"
    lines = host.run([tool, "-t", "nat"]).stdout.decode().splitlines()
    return [line for line in lines if not line.startswith("#")]


def cni_chains(lines: List[str]) -> List[str]:
    return [line.split()[0][1:] for line in lines if line.startswith(":CNI-")]


def leases(data_dir: str, network: str = "testnet") -> List[str]:
    d = os.path.join(data_dir, network)
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f != "lock" and not f.startswith("last_reserved_ip"))


def snapshot(host: NetNS, ctrs: List[NetNS], data_dir: str) -> Dict[str, Any]:
    """Everything a failed ADD must leave as it was."""
    return {
        "host_links": link_names(host),
        "ctr_links": [link_names(c) for c in ctrs if c.exists()],
        "leases": leases(data_dir),
        "nft": nft_ruleset(host),
        "iptables": iptables_nat(host, 4) + iptables_nat(host, 6),
    }


def link_names_eventually(ns: NetNS, expected: List[str], timeout: float = 10.0) -> List[str]:
    """link_names(ns) once it equals `expected`, or as it is at the timeout.

    A deleted pod namespace takes its veth pairs with it, but the kernel
    does that in the namespace's asynchronous cleanup: the host end lingers
    for a moment after `ip netns delete`, longer on a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        names = link_names(ns)
        if names == expected or time.monotonic() >= deadline:
            return names
        time.sleep(0.05)


def ping_eventually(ns: NetNS, address: str, timeout: float = 8.0) -> bool:
    """Ping until answered; bounded (IPv6 gateways answer only after DAD)."""
    deadline = time.monotonic() + timeout
    while True:
        if ns.ping(address, timeout=1):
            return True
        if time.monotonic() >= deadline:
            return False


# ---------------------------------------------------------------------------
# a scriptable IPAM plugin: records every call, answers what the netconf says

FAKE_IPAM = r'''#!/usr/bin/python3 -I
# Test double for an IPAM plugin: logs each call, answers from ipam.fake in the netconf.
import json, os, sys
LOG = %(log)r
data = sys.stdin.buffer.read()
conf = json.loads(data) if data.strip() else {}
cmd = os.environ.get("CNI_COMMAND", "")
with open(LOG, "a") as f:
    f.write(json.dumps({"command": cmd, "stdin": data.decode(), "env": {k: v for k, v in os.environ.items() if k.startswith("CNI_")},
                        "netns": os.readlink("/proc/self/ns/net")}) + "\n")
fake = (conf.get("ipam") or {}).get("fake") or {}
fail = (fake.get("fail") or {}).get(cmd)
if fail:
    sys.stdout.write(json.dumps(fail))
    sys.exit(1)
if cmd == "VERSION":
    sys.stdout.write(json.dumps({"cniVersion": "1.1.0", "supportedVersions": ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}))
elif cmd == "ADD":
    result = dict(fake.get("result") or {})
    result["cniVersion"] = conf.get("cniVersion", "")
    sys.stdout.write(json.dumps(result))
'''


def write_fake_ipam(directory: str, name: str = "fake-ipam") -> Tuple[str, str]:
    """(bin dir, call log path)."""
    os.makedirs(directory, exist_ok=True)
    log = os.path.join(directory, "calls.jsonl")
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(FAKE_IPAM % {"log": log})
    os.chmod(path, 0o755)
    return directory, log


def fake_calls(log: str) -> List[Dict[str, Any]]:
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]
