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

PRELUDE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fallback", %r)
fallback = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fallback)
installed = fallback.lazy_pyroute2()
""" % os.path.join(CNI, "agent", "fallback.py")


def run(code):
    proc = subprocess.run([sys.executable, "-I", "-c", PRELUDE + code], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


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


def test_an_imported_pyroute2_is_left_alone():
    code = "import pyroute2\n" + PRELUDE + "print(json.dumps({'installed': installed, 'full': hasattr(sys.modules['pyroute2'], 'NDB')}))\n"
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == {"installed": False, "full": True}
