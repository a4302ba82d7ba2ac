# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection as a Galaxy user gets it: `ansible-galaxy collection build`,
installed into an empty collections path, used from a directory outside the
checkout (no repository ansible.cfg): lab_up writes its inventory there, not
inside the installed collection, and `ansible-playbook nodenet.cni.site`
converges the lab, then a second run changes nothing.

Safety: the lab gets a unique name (nng<hex>); lab_down removes it by exact
name in the finalizer, whatever the test did.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import subprocess
from typing import Dict, List

import pytest
from ansiblerun import ROOT, VENV_BIN

LAB_NAME = "nng%s" % secrets.token_hex(2)
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
DEV_FILES = ["Makefile", "scripts", ".ci", "bench", "library", "ansible.cfg", "inventory", "requirements.txt", "tests/output", ".venv"]


def user_env(collections: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_LOCALHOST_WARNING="0")
    return env


def run(argv: List[str], cwd: str, env: Dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, "%s: rc=%d\n%s\n%s" % (argv, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("galaxy")
    build, collections, work = base / "build", base / "collections", base / "work"
    for d in (build, collections, work):
        d.mkdir()
    env = user_env(str(collections))
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(build), ROOT], str(work), env)
    tarball = glob.glob(str(build / "nodenet-cni-*.tar.gz"))[0]
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", tarball, "-p", str(collections)], str(work), env)
    return {"collection": str(collections / "ansible_collections" / "nodenet" / "cni"), "work": str(work), "env": env}


def test_the_tarball_ships_no_development_files(installed):
    shipped = [f for f in DEV_FILES if os.path.lexists(os.path.join(installed["collection"], f))]
    assert shipped == []
    for f in ("meta/execution-environment.yml", "meta/ee-requirements.txt", "bindep.txt", "playbooks/site.yml", "CHANGELOG.rst"):
        assert os.path.isfile(os.path.join(installed["collection"], f)), f


def test_ansible_doc_shows_the_roles_real_defaults(installed):
    proc = run([os.path.join(VENV_BIN, "ansible-doc"), "-t", "role", "nodenet.cni.cni_node"], installed["work"], installed["env"])
    assert "default: k8s_nodes" in proc.stdout and "default: 10.244.0.0/16" in proc.stdout
    assert "default: null" not in proc.stdout
    for entry in ("main", "subnets", "reset"):
        assert re.search(r"ENTRY POINT: \W*%s\b" % entry, proc.stdout), entry


def test_installed_collection_rolls_out_to_a_lab_with_its_inventory_outside(installed):
    work, env = installed["work"], installed["env"]
    playbook = os.path.join(VENV_BIN, "ansible-playbook")
    lab_vars = ["-e", "lab_name=" + LAB_NAME, "-e", "lab_node_count=2"]
    try:
        run([playbook, "nodenet.cni.lab_up", *lab_vars], work, env)
        inventory = os.path.join(work, "inventory", "lab.yml")
        assert os.path.isfile(inventory), "lab_up did not write the inventory into its working directory"
        assert not os.path.exists(os.path.join(installed["collection"], "inventory")), "lab_up wrote into the installed collection"
        first = {m[0]: int(m[2]) for m in RECAP.findall(run([playbook, "-i", inventory, "nodenet.cni.site"], work, env).stdout)}
        nodes = [h for h in first if h.startswith(LAB_NAME)]
        assert len(nodes) == 2 and all(first[h] > 0 for h in nodes), first
        second = {m[0]: int(m[2]) for m in RECAP.findall(run([playbook, "-i", inventory, "nodenet.cni.site"], work, env).stdout)}
        assert all(second[h] == 0 for h in nodes), second
    finally:
        subprocess.run([playbook, "nodenet.cni.lab_down", *lab_vars], cwd=work, env=env, capture_output=True, timeout=300, check=False)
