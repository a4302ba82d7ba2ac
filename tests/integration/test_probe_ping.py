# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/cni_node/files/probe-ping.sh, the probes' ping step, run as the role runs it.

One command per node pings every target from the probe pod's namespace at
once and says, per target, "ok" or "failed"; verify.yml's `probe_results`
filter then judges, site.yml's probe has the script judge (--judge NODE:
a message naming the node and every target without an answer, exit 1). Here the "probe" is a namespace this test makes: its loopback
addresses answer, an address it has no route to does not (nothing can
leave it: the namespace has no other link).
"""

from __future__ import annotations

import os
import subprocess

from ansible_collections.nodenet.cni.plugins.filter.node_network import probe_results

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "roles", "cni_node", "files", "probe-ping.sh")


def run_as_the_role(netns: str, ips, judge: str = ""):
    with open(SCRIPT, encoding="utf-8") as f:
        text = f.read()
    # the role's command (raw): /bin/bash -c <script> probe-ping [--judge <node>] <netns> <ip>|<name>=<ip>...
    options = ["--judge", judge] if judge else []
    return subprocess.run(["/bin/bash", "-c", text, "probe-ping", *options, netns] + list(ips), capture_output=True, text=True, timeout=60, check=False)


def test_every_target_gets_a_verdict(netns_factory):
    probe = netns_factory("probe")
    probe.run(["ip", "link", "set", "lo", "up"])
    targets = [{"name": "gateway", "ip": "127.0.0.1"}, {"name": "v6", "ip": "::1"}, {"name": "peer", "ip": "192.0.2.9"}]
    done = run_as_the_role(probe.name, [t["ip"] for t in targets])
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["failed 192.0.2.9", "ok 127.0.0.1", "ok ::1"]
    assert probe_results(done.stdout.splitlines(), targets) == {"gateway 127.0.0.1": True, "v6 ::1": True, "peer 192.0.2.9": False}


def test_a_probe_that_is_gone_fails_every_target(netns_factory):
    probe = netns_factory("probe")
    name = probe.name
    probe.delete()
    done = run_as_the_role(name, ["127.0.0.1"])
    assert done.stdout.splitlines() == ["failed 127.0.0.1"]


def test_the_judge_names_the_node_and_every_target_without_an_answer(netns_factory):
    probe = netns_factory("probe")
    probe.run(["ip", "link", "set", "lo", "up"])
    done = run_as_the_role(probe.name, ["gateway=127.0.0.1", "peer-1=::1", "peer-2=192.0.2.9", "peer-2=192.0.2.10"], judge="node-a")
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert sorted(lines[:4]) == ["failed 192.0.2.10", "failed 192.0.2.9", "ok 127.0.0.1", "ok ::1"]
    assert lines[4:] == ["pod network check failed on node-a: no answer from peer-2 192.0.2.9, peer-2 192.0.2.10"]
    # every answer: the verdicts only, exit 0 (also with nothing to ping)
    done = run_as_the_role(probe.name, ["gateway=127.0.0.1", "peer-1=::1"], judge="node-a")
    assert done.returncode == 0 and sorted(done.stdout.splitlines()) == ["ok 127.0.0.1", "ok ::1"], (done.stdout, done.stderr)
    done = run_as_the_role(probe.name, [], judge="node-a")
    assert done.returncode == 0 and done.stdout == "", (done.stdout, done.stderr)
