# SPDX-License-Identifier: GPL-3.0-or-later
"""A lab's playbooks and ad hoc modules from the tests (test_lab, test_lab_ssh).

Each test module makes its own lab under a unique name; these helpers take
that name, so they never touch another lab.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from ansiblerun import ROOT, VENV_BIN, ansible_env

RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


CONNECTION_PLAY = """
- name: The labnode connection, both ways
  hosts: k8s_nodes
  gather_facts: true
  vars:
    node_file: "/etc/nodenet/ünïcödé {{ lookup('env', 'ANSIBLE_PIPELINING') }}"
  tasks:
    - name: Raw command with unicode output
      ansible.builtin.raw: echo 汉语
      register: raw
    - name: Facts describe the node, not the host
      ansible.builtin.assert:
        that:
          - "'汉语' in raw.stdout"
          - ansible_facts.hostname == inventory_hostname
          - ansible_facts.interfaces | sort == ['eth0', 'lo']
    - name: Put a file with a unicode name
      ansible.builtin.copy: {dest: "{{ node_file }}", content: "汉语 {{ inventory_hostname }}", mode: "0600"}
    - name: Put an empty file
      ansible.builtin.copy: {dest: /etc/nodenet/empty, content: "", mode: "0600"}
    - name: Fetch both back
      ansible.builtin.fetch: {src: "{{ item }}", dest: "{{ out_dir }}/{{ inventory_hostname }}{{ item | basename }}", flat: true}
      loop: ["{{ node_file }}", /etc/nodenet/empty]
    - name: What came back is what went
      ansible.builtin.assert:
        that:
          - lookup('file', out_dir ~ '/' ~ inventory_hostname ~ (node_file | basename)) == '汉语 ' ~ inventory_hostname
          - lookup('file', out_dir ~ '/' ~ inventory_hostname ~ 'empty') == ''
    - name: Reconnect
      ansible.builtin.wait_for_connection: {timeout: 10}
"""


def run_connection_play(inventory_path: str, nodes: List[str], out_dir: Path, env: Dict[str, str]) -> None:
    """CONNECTION_PLAY on every node; each must end with unreachable=0 failed=0."""
    play = out_dir / "connection.yml"
    play.write_text(CONNECTION_PLAY, encoding="utf-8")
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory_path, str(play), "-e", "out_dir=" + str(out_dir)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for node in nodes:
        assert re.search(r"^%s\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0" % node, proc.stdout, re.M), proc.stdout


def lab_playbook(name: str, lab_name: str, inventory_path: str, *extra: str) -> Dict[str, int]:
    """playbooks/<name>.yml for the lab `lab_name`; the recap counts for localhost."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name + ".yml")]
    argv += ["-e", "lab_name=" + lab_name, "-e", "lab_inventory_path=" + inventory_path, *extra]
    proc = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    match = RECAP.search(proc.stdout)
    assert proc.returncode == 0 and match, "%s failed (rc=%d)\n%s\n%s" % (name, proc.returncode, proc.stdout, proc.stderr)
    ok, changed, unreachable, failed = (int(n) for n in match.groups())
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


@contextlib.contextmanager
def lab_up_down(playbook: Callable[..., Dict[str, int]], inventory_path: str, nodes: int = 2) -> Iterator[Dict[str, int]]:
    """lab_up (its recap counts), and lab_down at the end, even when lab_up or a test failed half-way."""
    try:
        yield playbook("lab_up", inventory_path, "-e", "lab_node_count=%d" % nodes)
    finally:
        playbook("lab_down", inventory_path)


def ad_hoc(inventory_path: str, pattern: str, module: str, args: str, *extra: str, env: Optional[Dict[str, str]] = None, timeout: int = 120) -> Dict[str, dict]:
    """One module ad hoc on the lab's nodes; each host's result, read from --tree."""
    tree = tempfile.mkdtemp(prefix="nnt-lab-tree-")
    try:
        argv = [os.path.join(VENV_BIN, "ansible"), "-i", inventory_path, pattern, "-m", module, "-a", args, "--tree", tree, *extra]
        proc = subprocess.run(argv, cwd=ROOT, env=env or ansible_env(), capture_output=True, text=True, timeout=timeout, check=False)
        results = {}
        for host in os.listdir(tree):
            with open(os.path.join(tree, host)) as f:
                results[host] = json.load(f)
        assert results, "ansible gave no results (rc=%d)\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)
        return results
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def lab_leftovers(lab_name: str, state_dir: str) -> List[str]:
    """The lab's namespaces, state directory and mounts still on the host."""
    found = []
    if os.path.isdir("/run/netns"):
        found += ["netns " + n for n in os.listdir("/run/netns") if n.startswith(lab_name + "-")]
    if os.path.exists(state_dir):
        found.append("state dir " + state_dir)
    with open("/proc/self/mountinfo") as f:
        found += ["mount " + line.split()[4] for line in f if lab_name in line]
    return found
