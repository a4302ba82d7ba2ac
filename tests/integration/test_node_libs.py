# SPDX-License-Identifier: GPL-3.0-or-later
"""Stock nodes: the modules on Debian's python3 without pyroute2/netaddr.

They borrow both from the plugin runtime cni_plugin installed, and without
it they fail naming what to do, changing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from ansiblerun import NODE_PYTHON, ROOT, run_module
from attachrun import NodeDirs, run_on_node, seed_conf

COLLECTIONS = os.path.join(ROOT, "collections")


def stock_python_has(lib: str) -> bool:
    return subprocess.run([NODE_PYTHON, "-I", "-c", "import " + lib], capture_output=True, check=False).returncode == 0


@pytest.fixture(autouse=True)
def stock_node():
    if stock_python_has("pyroute2") or stock_python_has("netaddr"):
        pytest.skip("%s has pyroute2 or netaddr: not a stock node's python3" % NODE_PYTHON)


def load_on_stock_python(bin_dirs):
    """node_libs.load() in a fresh stock interpreter (no Ansible there either)."""
    code = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from ansible_collections.nodenet.cni.plugins.module_utils import node_libs\n"
        "libs = node_libs.load(%r)\n"
        "import_ok = libs.ok and __import__('pyroute2') and __import__('netaddr') and True\n"
        "print(json.dumps(dict(libs.as_dict(), imported=bool(import_ok), found=node_libs.runtime_dirs(%r))))\n"
    ) % (COLLECTIONS, list(bin_dirs), list(bin_dirs))
    proc = subprocess.run([NODE_PYTHON, "-I", "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_the_runtime_a_launcher_names_is_found_and_imported(cni_bin, tmp_path):
    out = load_on_stock_python([str(tmp_path), cni_bin])
    assert out["missing"] == [] and out["imported"]
    assert out["source"].startswith(os.path.join(cni_bin, ".nodenet-cni") + "/")
    assert out["found"] == [out["source"]]


def test_load_only_looks_and_the_libraries_come_in_as_used(cni_bin, netns_factory):
    """load() finds both libraries without running their __init__ (pyroute2's imports NDB with sqlite,
    conntrack, ipset, ...); what a module then imports from them is the real thing, and only that."""
    code = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from ansible_collections.nodenet.cni.plugins.module_utils import node_libs\n"
        "libs = node_libs.load(%r)\n"
        "after_load = sorted(m for m in sys.modules if m.split('.')[0] in ('pyroute2', 'netaddr') and '.' in m)\n"
        "from pyroute2 import IPRoute\n"
        "from pyroute2 import netns\n"
        "from netaddr import IPNetwork\n"
        "from pyroute2.iproute.linux import IPRoute as Real\n"
        "from netaddr.ip import IPNetwork as RealNet\n"
        "with IPRoute() as ipr:\n"
        "    lo = [l.get_attr('IFLA_IFNAME') for l in ipr.get_links()]\n"
        "print(json.dumps(dict(ok=libs.ok, after_load=after_load, same=IPRoute is Real and IPNetwork is RealNet,\n"
        "    net=str(IPNetwork('10.244.1.7/24').cidr), lo=lo, netns=hasattr(netns, 'listnetns'),\n"
        "    whole=[m for m in ('pyroute2.ndb.main', 'pyroute2.conntrack', 'pyroute2.ipset', 'netaddr.eui') if m in sys.modules])))\n"
    ) % (COLLECTIONS, [cni_bin])
    argv = ["ip", "netns", "exec", netns_factory("libs").name, NODE_PYTHON, "-I", "-c", code]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] and out["after_load"] == [], out
    assert out["same"] and out["net"] == "10.244.1.0/24" and out["lo"] == ["lo"] and out["netns"]
    assert out["whole"] == [], "the whole library was imported: %s" % out["whole"]


def test_without_a_runtime_both_libraries_are_missing(tmp_path):
    out = load_on_stock_python([str(tmp_path), "/nonexistent/bin"])
    assert out["missing"] == ["pyroute2", "netaddr"] and out["source"] == "" and out["found"] == []


@pytest.mark.parametrize("module, args, missing", [
    ("nodenet.cni.cni_bridge", {"addresses": ["10.244.1.1/24"]}, ["pyroute2", "netaddr"]),
    ("nodenet.cni.cni_routes", {"routes": []}, ["pyroute2", "netaddr"]),
    ("nodenet.cni.cni_netconf", {"name": "n", "plugins": [{"type": "nodenet-loopback"}]}, ["netaddr"]),
    ("nodenet.cni.cni_attach", {"name": "nolibs"}, ["pyroute2", "netaddr"]),
])
def test_a_module_without_libraries_fails_naming_what_to_do(netns_factory, tmp_path, module, args, missing):
    node = netns_factory("nolib")
    empty = tmp_path / "bin"
    empty.mkdir()
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    if module != "nodenet.cni.cni_routes" and module != "nodenet.cni.cni_bridge":
        args = dict(args, conf_dir=str(conf_dir))
    res = run_module(module, dict(args, bin_dir=[str(empty)]), netns=node.name)
    assert res["failed"], res
    assert res["missing_libraries"] == missing
    msg = res["msg"]
    assert "Failed to import the required Python library (%s)" % " and ".join(missing) in msg
    assert NODE_PYTHON in msg and "nodenet.cni.cni_plugin" in msg and str(empty) + "/.nodenet-cni" in msg
    for lib in missing:
        assert "python3-" + lib in msg
    # nothing changed on the node
    assert node.run(["ip", "-o", "link"]).stdout.decode().count("\n") == 1
    assert os.listdir(conf_dir) == []


def test_facts_without_libraries_report_what_they_can(netns_factory, tmp_path, cni_bin):
    node = netns_factory("nolib")
    empty = tmp_path / "bin"
    empty.mkdir()
    dirs = NodeDirs(str(tmp_path / "node"), [str(empty)])
    dirs.write("10-mynet.conf", seed_conf(dirs.data_dir))
    os.makedirs(os.path.join(dirs.data_dir, "mynet"))
    with open(os.path.join(dirs.data_dir, "mynet", "10.13.3.9"), "w") as f:
        f.write("gone\r\neth0")
    res = run_on_node("nodenet.cni.cni_facts", dirs.args(), node)
    assert not res["failed"], res
    cni = res["cni"]
    assert cni["libraries"] == {"source": "", "missing": ["pyroute2", "netaddr"]}
    assert cni["active"]["file"].endswith("10-mynet.conf")
    assert [le["ip"] for le in cni["leaked_leases"]] == ["10.13.3.9"]
    assert set(cni["errors"]) == {"bridges", "routes", "configs"}, cni["errors"]  # lint needs netaddr
    assert all("python3-pyroute2" in why and "nodenet.cni.cni_plugin" in why for why in cni["errors"].values())
    # the same node with the runtime: everything, from the runtime's copies
    res = run_on_node("nodenet.cni.cni_facts", dirs.args(bin_dir=[cni_bin]), node)
    cni = res["cni"]
    assert cni["libraries"]["missing"] == [] and cni["libraries"]["source"].startswith(cni_bin)
    assert "bridges" not in cni["errors"] and "routes" not in cni["errors"], cni["errors"]
