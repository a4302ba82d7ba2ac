# SPDX-License-Identifier: GPL-3.0-or-later
"""The shims' in-process fallback imports only what a call needs.

A bridge + host-local ADD and DEL run exactly as a shim runs them when no
agent answers (the python command of the installed shim's `here` array,
in a test "host" namespace without an agent), and report which modules the
interpreter had loaded when it exited. The heavy parts a plugin call does
not use must stay out: pyroute2's socket layer (asyncio, ssl), its request
filters and its other message families, subprocess (IPAM runs in-process),
ctypes.util, the ipMasq helpers of a config without ipMasq, the real
pyroute2.config (platform, multiprocessing), logging, traceback, pprint,
pkgutil, inspect, copy and pyroute2's link-kind plugins (stand-ins until
used: nothing on a call's path uses them); and no dataclass's methods compiled in the call (they come
precompiled from agent/fallback_dataclasses.py). No timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, List, Tuple

from cnitest import NetNS

from ansible_collections.nodenet.cni.plugins.module_utils.cni.agent.shim import read_header

# atexit is a built-in module: registering costs no import
# (a stand-in of agent/fallback.py is reported as name:type; first, whether
# the cyclic garbage collector was on at the end)
REPORT = (
    "import atexit, gc, sys\n"
    "atexit.register(lambda: sys.stderr.write('\\nnodenet-modules: gc:%d %s\\n' % (gc.isenabled(), ' '.join(sorted("
    "'%s:%s' % (n, type(m).__name__) if type(m).__module__.endswith(('.fallback', '.lazy')) else n for n, m in list(sys.modules.items()))))))\n"
    # the dataclasses whose __init__ was compiled in this process (not taken from agent/fallback_dataclasses.py)
    "atexit.register(lambda: sys.stderr.write('\\nnodenet-compiled: %s\\n' % ' '.join(sorted("
    "'%s.%s' % (n, c.__name__) for n, m in list(sys.modules.items()) if n.startswith('nodenet_cni.') for c in list(vars(m).values())"
    " if isinstance(c, type) and '__dataclass_fields__' in vars(c) and c.__module__ == n"
    " and getattr(vars(c).get('__init__'), '__code__', None) is not None and vars(c)['__init__'].__code__.co_filename == '<string>'))))\n"
)

NOT_IMPORTED = (
    "asyncio",
    "ssl",
    "subprocess",
    "multiprocessing.connection",
    "ctypes.util",
    "hashlib",
    "dis",
    "ast",
    "pyroute2.iproute",
    "pyroute2.netlink.nlsocket",
    "pyroute2.netlink.rtnl.marshal",
    "pyroute2.netlink.rtnl.tcmsg",
    "pyroute2.requests",
    "pyroute2.ndb",
    "netaddr.eui",
    "nodenet_cni.net.ipmasq",
    "nodenet_cni.net.nftcmd",
    "pyroute2.config",
    "platform",
    "multiprocessing",
    "pickle",
    "logging",
    "traceback",
    "tokenize",
    "pprint",
    "pkgutil",
    "importlib.util",
    "signal",
)

# stand-ins (agent/fallback.py, lazy.py) that a call never needs to make real
STAND_INS = {
    "pyroute2": "_LazyPackage",
    "pyroute2.config": "_LazyPackage",
    "netaddr": "_LazyPackage",
    "logging": "_LazyLogging",
    "inspect": "_LazyModule",
    "traceback": "_LazyModule",
    "pprint": "_LazyModule",
    "pkgutil": "_LazyModule",
    "copy": "_LazyModule",
}
# pyroute2's link-kind plugins, never looked up by a call (agent/fallback.py, lazy_link_kinds)
LINK_KINDS = ("bond", "can", "geneve", "gtp", "ipoib", "ipvlan", "team", "tun", "tuntap", "vlan", "vrf", "vti", "vti6", "vxlan", "xfrm")
STAND_INS.update({"pyroute2.netlink.rtnl.ifinfmsg.plugins." + kind: "_LazyKindModule" for kind in LINK_KINDS})


def fallback_code(shim_path: str) -> Tuple[str, str]:
    """(interpreter, python code) of the shim's in-process fallback, as installed."""
    with open(shim_path) as f:
        text = f.read()
    line = next(line for line in text.splitlines() if line.startswith("here=(") and " -I -S -c '" in line)
    code = line.split(" -c '", 1)[1].rsplit("'", 1)[0]
    header = read_header(shim_path)
    assert header is not None and line.startswith("here=(%s -I -S -c" % header["interpreter"])
    return header["interpreter"], code


def run_fallback(host: NetNS, bin_dir: str, command: str, conf: Dict[str, Any], ctr: NetNS) -> Tuple[int, str, List[str], Dict[str, str]]:
    interpreter, code = fallback_code(os.path.join(bin_dir, "nodenet-bridge"))
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "fbimports",
        "CNI_NETNS": ctr.path,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": bin_dir,
    }
    argv = ["ip", "netns", "exec", host.name, interpreter, "-I", "-S", "-c", REPORT + code]
    proc = subprocess.run(argv, input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=120, check=False)
    err = proc.stderr.decode()
    report = [line for line in err.splitlines() if line.startswith("nodenet-modules: ")]
    assert len(report) == 1, err
    compiled = [line for line in err.splitlines() if line.startswith("nodenet-compiled:")]
    assert compiled == ["nodenet-compiled: "], compiled  # every dataclass's methods came precompiled
    gc_flag, *entries = report[0].split()[1:]
    assert gc_flag == "gc:0"  # a one-call process: no cyclic collections (agent/fallback.main)
    modules = [e for e in entries if ":" not in e]
    stand_ins = dict(e.split(":", 1) for e in entries if ":" in e)
    return proc.returncode, proc.stdout.decode(), modules, stand_ins


def heavy(modules: List[str]) -> List[str]:
    return sorted(m for m in modules if any(m == name or m.startswith(name + ".") for name in NOT_IMPORTED))


def test_a_fallback_bridge_add_and_del_import_no_heavy_module(netns_factory, cni_bin, data_dir):
    host, ctr = netns_factory("fbimp"), netns_factory("fbimpc")
    conf = {
        "cniVersion": "1.0.0",
        "name": "fbimports",
        "type": "nodenet-bridge",
        "bridge": "nnfbimp0",
        "isGateway": True,
        "isDefaultGateway": True,
        "ipMasq": False,
        "ipam": {"type": "nodenet-host-local", "dataDir": data_dir, "ranges": [[{"subnet": "10.251.3.0/24"}]]},
    }
    code, out, modules, stand_ins = run_fallback(host, cni_bin, "ADD", conf, ctr)
    assert code == 0, out
    result = json.loads(out)
    assert [ip["address"] for ip in result["ips"]] == ["10.251.3.2/24"]
    assert [r["dst"] for r in result["routes"]] == ["0.0.0.0/0"]
    # the work really happened through pyroute2 and netaddr, in this process
    assert {"pyroute2.netlink.rtnl.ifinfmsg", "netaddr.ip", "nodenet_cni.plugin.host_local"} <= set(modules)
    assert heavy(modules) == [], heavy(modules)
    assert stand_ins == STAND_INS  # none of them was needed
    assert "10.251.3.2/24" in ctr.run(["ip", "-4", "addr", "show", "eth0"]).stdout.decode()
    assert "default via 10.251.3.1 dev eth0" in ctr.run(["ip", "-4", "route", "show"]).stdout.decode()

    code, out, modules, stand_ins = run_fallback(host, cni_bin, "DEL", conf, ctr)
    assert code == 0, out
    assert heavy(modules) == [], heavy(modules)
    assert stand_ins == STAND_INS
    assert "eth0" not in ctr.run(["ip", "-o", "link", "show"]).stdout.decode()
