# SPDX-License-Identifier: GPL-3.0-or-later
"""agent/fallback.py's lazy pyroute2 package, in a fresh interpreter each time.

The fallback must reach exactly the netlink API the plugins use (the same
IPRoute class, submodules such as pyroute2.netns) without running pyroute2's
__init__, and must still give every other public name by running it then.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CNI = os.path.join(ROOT, "plugins", "module_utils", "cni")

# The package loaded under the installed runtime's name (nodenet_cni), as the
# shim's fallback command imports it, without anything else of the collection.
PRELUDE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("nodenet_cni", %r, submodule_search_locations=[%r])
package = importlib.util.module_from_spec(spec)
sys.modules["nodenet_cni"] = package
spec.loader.exec_module(package)
from nodenet_cni.agent import fallback
installed = fallback.lazy_pyroute2()
""" % (os.path.join(CNI, "__init__.py"), CNI)


def run(code):
    proc = subprocess.run([sys.executable, "-I", "-c", PRELUDE + code], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    return json.loads(lines[0]) if len(lines) == 1 else [json.loads(line) for line in lines]


def test_iproute_without_pyroute2_init():
    out = run("""
from pyroute2 import IPRoute
from pyroute2.iproute.linux import IPRoute as Linux
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2 import netns
import pyroute2
with IPRoute() as ipr:
    links = [l.get_attr("IFLA_IFNAME") for l in ipr.get_links()]
print(json.dumps({"installed": installed, "same": IPRoute is Linux, "ndb": "pyroute2.ndb.main" in sys.modules,
                  "conntrack": "pyroute2.conntrack" in sys.modules, "netns": netns.__name__, "lo": "lo" in links,
                  "err": pyroute2.NetlinkError is NetlinkError}))
""")
    assert out == {"installed": True, "same": True, "ndb": False, "conntrack": False, "netns": "pyroute2.netns", "lo": True, "err": True}


def test_any_other_name_runs_the_real_init():
    out = run("""
import pyroute2
before = "pyroute2.ndb.main" in sys.modules
ndb = pyroute2.NDB
from pyroute2 import IPSet
try:
    pyroute2.NoSuchThing
    missing = "no error"
except AttributeError as e:
    missing = str(e)
print(json.dumps({"before": before, "after": "pyroute2.ndb.main" in sys.modules, "ndb": ndb.__module__, "ipset": IPSet.__name__,
                  "missing": missing, "version": bool(pyroute2.__version__)}))
""")
    assert out["before"] is False and out["after"] is True
    assert out["ndb"] == "pyroute2.ndb.main" and out["ipset"] == "IPSet"
    assert "NoSuchThing" in out["missing"] and out["version"] is True


def test_threads_asking_at_once_all_get_the_name_from_one_init():
    # the agent's worker threads: the first name that runs the real __init__
    # must not fail the threads that ask while it runs
    out = run("""
import threading
import pyroute2
barrier = threading.Barrier(8)
got, errors = [], []
def ask():
    barrier.wait()
    try:
        got.append(pyroute2.NDB.__module__)
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=ask) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"got": got, "errors": errors}))
""")
    assert out == {"got": ["pyroute2.ndb.main"] * 8, "errors": []}


def test_an_imported_pyroute2_is_left_alone():
    code = "import pyroute2\n" + PRELUDE + "print(json.dumps({'installed': installed, 'full': hasattr(sys.modules['pyroute2'], 'NDB')}))\n"
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == {"installed": False, "full": True}


def test_netaddr_without_its_init():
    out = run("""
fallback.lazy_imports()
from netaddr import IPAddress, IPNetwork, AddrFormatError
import netaddr.ip
try:
    IPAddress("10.0.0.300")
    bad = "accepted"
except AddrFormatError:
    bad = "refused"
net = IPNetwork("10.1.0.0/16")
print(json.dumps({"same": IPNetwork is netaddr.ip.IPNetwork, "eui": "netaddr.eui" in sys.modules, "bad": bad,
                  "last": str(IPAddress(net.last)), "v6": str(IPAddress("fd00::1").ipv6())}))
import netaddr
eui = netaddr.EUI("00:11:22:33:44:55")
print(json.dumps({"eui": str(eui)}))
""".strip())
    assert out[0] == {"same": True, "eui": False, "bad": "refused", "last": "10.1.255.255", "v6": "fd00::1"}
    assert out[1] == {"eui": "00-11-22-33-44-55"}  # any other name: netaddr's real __init__


def test_pyroute2_config_without_platform_and_multiprocessing():
    # what the lazy pyroute2.config answers itself must be what its __init__ sets
    out = run("""
fallback.lazy_imports()
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
import pyroute2, pyroute2.config as config
lazy = {"type": type(config).__name__, "platform": "platform" in sys.modules, "mp": "multiprocessing" in sys.modules,
        "bound": pyroute2.config is config, "preset": {k: config.__dict__[k] for k in ("AF_BRIDGE", "data_plugins_pkgs", "data_plugins_path")}}
kernel = config.kernel  # any other name: the real __init__, into this very module
from pyroute2.config import asyncio as config_asyncio  # a submodule as before
print(json.dumps(lazy))
print(json.dumps({"same": sys.modules["pyroute2.config"] is config, "kernel": bool(kernel), "mp": "multiprocessing" in sys.modules,
                  "values": {k: getattr(config, k) for k in lazy["preset"]}, "sub": config_asyncio.__name__}))
""")
    assert out[0]["type"] == "_LazyPackage" and out[0]["bound"] is True
    assert out[0]["platform"] is False and out[0]["mp"] is False
    assert out[1]["same"] is True and out[1]["kernel"] is True and out[1]["mp"] is True
    assert out[1]["values"] == out[0]["preset"]
    assert out[1]["sub"] == "pyroute2.config.asyncio"


def test_logging_stand_in_logs_through_the_real_logging():
    out = run("""
fallback.lazy_imports()
import logging
log = logging.getLogger("pyroute2.netlink")  # what pyroute2's modules do at import
before = type(sys.modules["logging"]).__name__
import io
stream = io.StringIO()
handler = logging.StreamHandler(stream)  # the first use imports the real module, in sys.modules from then on
real = sys.modules["logging"]
real.getLogger("pyroute2").addHandler(handler)
log.warning("decoding %s", "x")
print(json.dumps({"before": before, "logged": stream.getvalue(), "real": type(real).__name__, "handler": type(handler) is real.StreamHandler,
                  "root": logging.getLogger() is real.getLogger(), "level": log.getEffectiveLevel()}))
""")
    assert out["before"] == "_LazyLogging"
    assert out["logged"] == "decoding x\n"
    assert out["real"] == "module" and out["handler"] is True and out["root"] is True and out["level"] == 30


def test_lazy_stdlib_modules_load_on_first_use():
    out = run("""
fallback.lazy_imports()
import traceback, pprint, pkgutil
lazy = [type(m).__name__ for m in (traceback, pprint, pkgutil)]
try:
    1 / 0
except ZeroDivisionError:
    text = traceback.format_exc()
print(json.dumps({"lazy": lazy, "tb": "ZeroDivisionError" in text, "pp": pprint.pformat({"a": 1}),
                  "real": type(sys.modules["traceback"]).__name__, "tokenize": "tokenize" in sys.modules}))
""")
    assert out == {"lazy": ["_LazyModule"] * 3, "tb": True, "pp": "{'a': 1}", "real": "module", "tokenize": True}


def test_a_submodule_of_a_stand_in_package_lands_on_the_real_one():
    out = run("""
fallback.lazy_imports()
import logging.handlers
real = sys.modules["logging"]
print(json.dumps({"real": type(real).__name__, "bound": real.handlers is sys.modules["logging.handlers"],
                  "class": logging.handlers.RotatingFileHandler.__name__}))
""")
    assert out == {"real": "module", "bound": True, "class": "RotatingFileHandler"}


def test_link_kind_plugins_work_through_their_stand_ins():
    # a vlan link's IFLA_INFO_DATA encoded and decoded by ifinfmsg through the
    # stand-in class, as with pyroute2 imported normally
    code = """
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
kinds = sys.modules["pyroute2.netlink.rtnl.ifinfmsg.plugins.vlan"]
before = type(kinds).__name__
msg = ifinfmsg()
msg["index"] = 7
msg["attrs"] = [["IFLA_IFNAME", "v7"], ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "vlan"], ["IFLA_INFO_DATA", {"attrs": [["IFLA_VLAN_ID", 5]]}]]}]]
msg.encode()
back = ifinfmsg(msg.data)
back.decode()
data = back.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
from pyroute2.netlink.rtnl.ifinfmsg.plugins.vlan import vlan
print(json.dumps({"before": before, "data": msg.data.hex(), "id": back.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_VLAN_ID"),
                  "cls": type(data).__module__ + "." + type(data).__name__, "same": type(data) is vlan,
                  "vlan": type(sys.modules["pyroute2.netlink.rtnl.ifinfmsg.plugins.vlan"]).__name__,
                  "bond": type(sys.modules["pyroute2.netlink.rtnl.ifinfmsg.plugins.bond"]).__name__,
                  "nla_map": [n for n, _t in kinds.vlan.nla_map][:2]}))
"""
    lazy = run("n = fallback.lazy_link_kinds()\nfallback.lazy_imports()\n" + code.replace("print(json.dumps({", "print(json.dumps({'n': n, "))
    full = run("import pyroute2.netlink.rtnl.ifinfmsg\n" + code)
    assert lazy.pop("n") == 15 and lazy.pop("before") == "_LazyKindModule" and full.pop("before") == "module"
    assert lazy.pop("bond") == "_LazyKindModule" and full.pop("bond") == "module"  # the one used is made real, no other
    assert lazy == full
    assert full["id"] == 5 and full["cls"] == "pyroute2.netlink.rtnl.ifinfmsg.plugins.vlan.vlan" and full["vlan"] == "module"
    assert full["nla_map"] == ["IFLA_VLAN_UNSPEC", "IFLA_VLAN_ID"]
