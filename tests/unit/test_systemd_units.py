# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The units the role installs, read by systemd's own parser.

There is no systemd running here (nor in the lab), so the units cannot be
started; `systemd-analyze verify` parses them as systemd would and names
every directive it would ignore, every unknown type and every ExecStart
that is not an executable. A unit with a typo would otherwise only fail on
a real node's next boot.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import jinja2
import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import boot_files

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT_TEMPLATE = os.path.join(REPO, "roles", "cni_node", "templates", "nodenet-agent.service.j2")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")


def verify(unit_path: str) -> str:
    """What systemd-analyze says about this unit (it exits 0 even for most problems)."""
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", unit_path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, SYSTEMD_LOG_COLOR="0"),
    )
    # other units on this machine may be reported too: keep what concerns ours
    name = os.path.basename(unit_path)
    lines = (proc.stdout + proc.stderr).splitlines()
    return "\n".join(line for line in lines if name in line or unit_path in line)


@pytest.fixture
def executable(tmp_path):
    path = tmp_path / "bin" / "nodenet-agent"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def write_unit(tmp_path, name: str, text: bytes) -> str:
    path = tmp_path / "units" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text)
    return str(path)


def test_the_boot_unit_is_clean_to_systemd(tmp_path, executable):
    # argv with what systemd would expand: a %-specifier, a $VARIABLE, a space, a quote
    command = [executable, "-c", "print('%h $HOME')", "/etc/nodenet/boot state.json"]
    text = boot_files.render_unit(command, "nodenet.cni: restore the pod network", ["containerd.service", "kubelet.service"], "multi-user.target")
    unit = write_unit(tmp_path, "nntest-boot.service", text)
    assert verify(unit) == ""


def test_the_agent_unit_is_clean_to_systemd(tmp_path, executable):
    with open(AGENT_TEMPLATE, encoding="utf-8") as f:
        template = jinja2.Template(f.read(), undefined=jinja2.StrictUndefined)
    text = template.render(ansible_managed="Managed by nodenet.cni", cni_node_agent_bin=executable)
    unit = write_unit(tmp_path, "nntest-agent.service", text.encode())
    assert verify(unit) == ""


def test_verify_finds_what_systemd_would_ignore(tmp_path, executable):
    # the check above can fail: a wrong type and a missing ExecStart binary are both reported
    text = boot_files.render_unit([executable], "x", [], "multi-user.target").replace(b"Type=oneshot", b"Type=oneshotx")
    assert "service type" in verify(write_unit(tmp_path, "nntest-bad-type.service", text))
    missing = boot_files.render_unit([str(tmp_path / "no-such-binary")], "x", [], "multi-user.target")
    assert verify(write_unit(tmp_path, "nntest-missing.service", missing)) != ""
