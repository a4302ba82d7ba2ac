# SPDX-License-Identifier: GPL-3.0-or-later
"""The repository's ansible.cfg and its vars plugin (scripts/vars/nodenet_setup.py), through
ansible-playbook from the repository root: the plugin says what to run when the checkout is not
set up, and costs the controller one load per run, not one per host and task.

Nothing here touches a network: two hosts on the local connection that only run `debug`.
"""

from __future__ import annotations

import os
import subprocess

from ansiblerun import ROOT, VENV_BIN, ansible_env

PLAY = """
- hosts: all
  gather_facts: false
  tasks:
    - {name: one, ansible.builtin.debug: {msg: one}}
    - {name: two, ansible.builtin.debug: {msg: two}}
    - {name: three, ansible.builtin.debug: {msg: three}}
"""
INVENTORY = "all:\n  hosts:\n    h1: {ansible_connection: local}\n    h2: {ansible_connection: local}\n"


def play(tmp_path, **env) -> subprocess.CompletedProcess:
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "inventory.yml").write_text(INVENTORY)
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
        cwd=ROOT, env=dict(ansible_env(), **env), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_the_vars_plugin_is_loaded_once_per_run_not_per_host_and_task(tmp_path):
    """The vars loader asks for every vars plugin on each host of each task; a plugin that is not
    stateless is found, loaded and its DOCUMENTATION parsed again each time, in the controller's
    one strategy process (about 40 times here, ~250 times in a 10-node site.yml)."""
    proc = play(tmp_path, ANSIBLE_DEBUG="1")
    loads = (proc.stdout + proc.stderr).count("Loading VarsModule 'nodenet_setup'")
    assert 1 <= loads <= 2, loads  # the class once when the loader is primed, the instance once


def test_without_the_collection_link_the_run_says_to_run_make_setup(tmp_path):
    proc = play(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "empty"))
    assert "this checkout is not set up. Run `make setup`" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    quiet = play(tmp_path)
    assert "make setup" not in quiet.stdout + quiet.stderr, quiet.stderr[-2000:]
