# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_plugin's shell look (module_utils/install_check.py) on a real install.

The command runs here exactly as the action plugin sends it (sh -c), against a
runtime installed by installer.apply_state into a tmp dir; its verdict must be
"current" only when installer's own rules (current_state == desired_state) say
so, for every drift below and for output it cannot read.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils import install_check
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

FILES = {"nodenet_cni/__init__.py": b"", "nodenet_cni/plugin/loopback.py": b"VALUE = 1\n"}
DIGEST = "0123456789abcdef" * 4
PYTHON = sys.executable


def look(plan):
    proc = subprocess.run(["/bin/sh", "-c", plan.command()], capture_output=True, text=True, timeout=60, check=False)
    return install_check.verdict(proc.returncode, proc.stdout, plan)


def module_says_current(bin_dir, args) -> bool:
    names = installer.plugin_names(sorted(args.get("plugins", installer.PLUGINS)), "nodenet-", False, True)
    lib_dir = installer.default_lib_dir(bin_dir)
    return installer.current_state(bin_dir, lib_dir, names) == installer.desired_state(bin_dir, lib_dir, names, DIGEST, PYTHON)


@pytest.fixture
def node(tmp_path):
    bin_dir = str(tmp_path / "bin")
    args = {"bin_dir": [bin_dir], "interpreter": PYTHON}
    plan = install_check.plan(args, DIGEST)
    assert plan is not None
    assert look(plan) == install_check.ABSENT
    names = installer.plugin_names(list(installer.PLUGINS), "nodenet-", False, True)
    installer.apply_state(bin_dir, installer.default_lib_dir(bin_dir), names, DIGEST, FILES, PYTHON)
    assert module_says_current(bin_dir, args) and look(plan) == install_check.CURRENT
    return bin_dir, args, plan


def test_the_result_is_the_modules_no_change_result(node):
    bin_dir, _args, plan = node
    assert plan.result["changed"] is False and plan.result["digest"] == DIGEST
    assert plan.result["runtime_dir"] == os.path.join(bin_dir, ".nodenet-cni", DIGEST[:16])
    assert plan.result["agent"] == os.path.join(bin_dir, "nodenet-agent")
    assert sorted(plan.result["plugins"]) == ["nodenet-bridge", "nodenet-host-local", "nodenet-loopback", "nodenet-portmap"]


def _edit(path):
    with open(path, "a") as f:
        f.write("# drift\n")


DRIFTS = {
    "runtime source edited": lambda r, b: _edit(os.path.join(r, "nodenet_cni", "plugin", "loopback.py")),
    "runtime file mode": lambda r, b: os.chmod(os.path.join(r, "nodenet_cni", "plugin", "loopback.py"), 0o600),
    "runtime dir mode": lambda r, b: os.chmod(os.path.join(r, "nodenet_cni"), 0o700),
    "runtime file removed": lambda r, b: os.unlink(os.path.join(r, "nodenet_cni", "__init__.py")),
    "file added": lambda r, b: open(os.path.join(r, "nodenet_cni", "x.py"), "w").close(),
    "symlink added": lambda r, b: os.symlink("/etc/passwd", os.path.join(r, "nodenet_cni", "y.py")),
    "manifest removed": lambda r, b: os.unlink(os.path.join(r, installer.MANIFEST)),
    "launcher edited": lambda r, b: _edit(os.path.join(b, "nodenet-bridge")),
    "launcher mode": lambda r, b: os.chmod(os.path.join(b, "nodenet-portmap"), 0o750),
    "launcher removed": lambda r, b: os.unlink(os.path.join(b, "nodenet-agent")),
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_a_drift_is_never_current(node, drift):
    bin_dir, args, plan = node
    DRIFTS[drift](plan.rdir, bin_dir)
    assert not module_says_current(bin_dir, args)
    assert look(plan) != install_check.CURRENT


def test_another_runtime_in_lib_dir_sends_the_module(node):
    _bin_dir, _args, plan = node
    os.mkdir(os.path.join(plan.lib_dir, "fedcba9876543210"))
    assert look(plan) == install_check.UNKNOWN


def test_other_arguments_mean_another_plan(node):
    bin_dir, _args, _plan = node
    other = install_check.plan({"bin_dir": [bin_dir], "interpreter": PYTHON, "agent_port": 1022}, DIGEST)
    assert look(other) == install_check.UNKNOWN  # the launchers say port 1021
    wrong_digest = install_check.plan({"bin_dir": [bin_dir], "interpreter": PYTHON}, "f" * 64)
    assert look(wrong_digest) == install_check.ABSENT


def test_an_unusable_interpreter_sends_the_module(node):
    bin_dir, _args, _plan = node
    plan = install_check.plan({"bin_dir": [bin_dir], "interpreter": "/nonexistent/python3"}, DIGEST)
    assert look(plan) == install_check.UNKNOWN


@pytest.mark.parametrize("rc, stdout", [(1, ""), (0, ""), (0, "== euid\n0\n"), (127, "absent\n")])
def test_output_it_cannot_read_is_unknown(node, rc, stdout):
    assert install_check.verdict(rc, stdout, node[2]) == install_check.UNKNOWN


@pytest.mark.parametrize(
    "args",
    [
        {"bin_dir": ["~/bin"]},
        {"bin_dir": "/a,/b"},
        {"bin_dir": ["/opt/cni/bin"], "state": "absent"},
        {"bin_dir": ["/opt/cni/bin"], "prefix": "a b"},
        {"bin_dir": ["/opt/cni/bin"], "plugins": ["macvlan"]},
        {"bin_dir": ["/opt/cni/bin"], "agent_port": 70000},
        {"bin_dir": ["/opt/cni/bin"], "reference_names": "maybe"},
        {"bin_dir": ["/opt/cni/bin"], "unknown_option": 1},
        {"bin_dir": ["/opt/cni/bin"], "interpreter": "$HOME/python"},
    ],
)
def test_arguments_the_module_must_judge_get_no_plan(args):
    assert install_check.plan(args, DIGEST) is None


def test_the_look_knows_every_option_of_the_module():
    """plan() judges only arguments it knows; an option added to the module's argument_spec but not
    here would be ignored by the look, which could then call a node current that the option changes."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import install_cli

    options = set(install_cli.ARGUMENT_SPEC)  # the module's argument_spec (and its action plugin's check)
    assert options - {"src", "digest"} == set(install_check._OPTIONS)  # pylint: disable=protected-access
