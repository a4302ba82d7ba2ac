# SPDX-License-Identifier: GPL-3.0-or-later
"""meta/runtime.yml action groups: module_defaults sets the CNI paths once.

Only reads: cni_facts gathers the configs of a temporary conf dir and
cni_attach runs in check mode (it executes nothing and creates nothing).
"""

from __future__ import annotations

import json
import os
import subprocess

from ansiblerun import ROOT, VENV_BIN, ansible_env

PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/nodenet.cni.cni_runtime:
      conf_dir: %(conf)s
      bin_dir: [%(bin)s]
      cache_dir: %(cache)s
  tasks:
    - nodenet.cni.cni_facts:
        gather: [configs]
      register: facts
    - nodenet.cni.cni_attach:
        name: nnagprobe
      check_mode: true
      register: attach
    - ansible.builtin.copy:
        dest: %(out)s
        content: "{{ {'facts': facts.cni, 'attach': attach} | to_json }}"
        mode: "0600"
"""


def test_module_defaults_for_the_runtime_group_set_conf_bin_and_cache_dir_once(tmp_path):
    conf, bin_dir, cache = tmp_path / "net.d", tmp_path / "bin", tmp_path / "cache"
    for d in (conf, bin_dir, cache):
        d.mkdir()
    (bin_dir / "bridge").write_text("#!/bin/sh\nexit 1\n")  # never run: check mode executes nothing
    (bin_dir / "bridge").chmod(0o755)
    (conf / "10-probe.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "agnet", "plugins": [{"type": "bridge"}]}))
    out = tmp_path / "out.json"
    play = tmp_path / "play.yml"
    play.write_text(PLAY % {"conf": conf, "bin": bin_dir, "cache": cache, "out": out})
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), str(play)], cwd=ROOT, env=ansible_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(out.read_text())
    assert got["facts"]["conf_dir"] == str(conf) and got["facts"]["bin_dirs"] == [str(bin_dir)] and got["facts"]["cache_dir"] == str(cache)
    assert [c["name"] for c in got["facts"]["configs"]] == ["agnet"]
    assert "agnet" in json.dumps(got["attach"]), "cni_attach (check mode) did not pick the config from the group's conf_dir"
    assert not os.path.exists("/var/run/netns/nnagprobe")
