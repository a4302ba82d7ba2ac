# SPDX-License-Identifier: GPL-3.0-or-later
"""The roll-out through ansible-playbook against a dual-stack lab: site.yml
converges (changed), a second run is quiet (changed=0 on every host, probes
included, nothing left behind), verify.yml's ping matrix passes in both
families, and the node group is one variable that fails clearly when wrong.

Safety: the lab gets a unique name (nnr<hex>); lab_down removes it by exact
name in the fixture finalizer, whatever the tests did.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import subprocess
from typing import Dict, List

import pytest
from ansiblerun import ROOT, VENV_BIN, ansible_env, task_results

LAB_NAME = "nnr%s" % secrets.token_hex(2)
CLUSTER = "cni_node_cluster_cidr=10.244.0.0/16,fd00:10:244::/56"
CHECK_TASK = "Check whether the node already matches (plugins, agent, pod network state)"
CONVERGE_INCLUDE = "Install the plugins, keep the agent running, converge the pod network (unless the node matches)"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def run(argv: List[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout, check=False)


def recap(proc: subprocess.CompletedProcess) -> Dict[str, Dict[str, int]]:
    return {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])} for m in RECAP.findall(proc.stdout)}


def playbook(path: str, inventory: str, *extra: str) -> subprocess.CompletedProcess:
    return run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, path, *extra])


def ok(proc: subprocess.CompletedProcess) -> Dict[str, Dict[str, int]]:
    assert proc.returncode == 0, "rc=%d\n%s\n%s" % (proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])
    return recap(proc)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory = str(tmp_path_factory.mktemp("rollout") / "lab.yml")
    lab_vars = ["-e", "lab_name=" + LAB_NAME, "-e", "lab_inventory_path=" + inventory]
    try:
        ok(run([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/lab_up.yml", *lab_vars,
                "-e", "lab_node_count=2", "-e", "lab_underlay_cidr_ipv6=fd00:31:250::/64"]))
        yield inventory
    finally:
        run([os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/lab_down.yml", *lab_vars])


def probe_namespaces(inventory: str) -> str:
    proc = run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, "k8s_nodes", "-m", "ansible.builtin.command", "-a", "ls /run/netns"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def on_nodes(inventory: str, command: str, tree) -> Dict[str, str]:
    """{node: stdout} of `command` run in every lab node (ansible's tree output, one JSON file per host)."""
    proc = run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, "k8s_nodes", "-m", "ansible.builtin.command", "-a", command, "-t", str(tree)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {name: json.loads((tree / name).read_text())["stdout"] for name in os.listdir(str(tree))}


def test_check_mode_on_new_nodes_predicts_and_changes_nothing(lab, tmp_path):
    """What an operator runs first on a new cluster: `site.yml --check --diff`. Nothing is installed
    under --check, so the node state cannot be observed with the plugin runtime's libraries: the run
    must still pass, report every node changing, and leave the nodes untouched."""
    proc = playbook("site.yml", lab, "-e", CLUSTER, "--check", "--diff")
    checked = ok(proc)
    nodes = [h for h in checked if h.startswith(LAB_NAME)]
    assert len(nodes) == 2 and all(checked[h]["changed"] > 0 for h in nodes), checked
    assert "not inspected, reported as changing" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    left = on_nodes(lab, "sh -c 'find /etc/nodenet /opt/cni/bin -mindepth 1 2>/dev/null; ip -br link show cni0 2>/dev/null; true'", tmp_path / "left")
    assert all(out.strip() == "" for out in left.values()), left


def test_site_converges_then_a_second_run_changes_nothing(lab, tmp_path):
    first_proc = playbook("site.yml", lab, "-e", CLUSTER)
    first = ok(first_proc)
    nodes = [h for h in first if h.startswith(LAB_NAME)]
    # the packages were looked up with the pod subnets (no task of their own), and the lab's nodes have them all
    assert re.search(r"TASK \[[^\]]*Read this node's persisted pod subnets \(and look up the packages", first_proc.stdout), first_proc.stdout[:3000]
    assert re.search(r"TASK \[[^\]]*Install the packages the plugins need\][^\n]*\n(skipping: .*\n)+(?!ok|changed)", first_proc.stdout), \
        "the package manager ran although every package is installed"
    assert len(nodes) == 2 and all(first[h]["changed"] > 0 for h in nodes), first
    assert "nnprobe" not in probe_namespaces(lab), "a probe pod was left behind"
    # each node's subnets are persisted (the converge run's first part), and they are the ones its bridge serves
    persisted = on_nodes(lab, "cat /etc/nodenet/pod_subnet", tmp_path / "persisted")
    bridge = on_nodes(lab, "ip -j addr show dev cni0", tmp_path / "bridge")
    for name in nodes:
        served = sorted(str(ipaddress.ip_interface("%s/%d" % (a["local"], a["prefixlen"])).network)
                        for a in json.loads(bridge[name])[0]["addr_info"] if a["scope"] == "global")
        assert sorted(persisted[name].split()) == served and len(served) == 2, (name, persisted[name], served)
    second_proc = playbook("site.yml", lab, "-e", CLUSTER)
    second = ok(second_proc)
    assert all(second[h]["changed"] == 0 and second[h]["failed"] == 0 for h in nodes), second
    # the package manager did not run either (every node current: the whole converge include was skipped)
    assert all(r["status"] == "skipping" for r in task_results(second_proc.stdout, "Install the packages the plugins need").values())
    assert {r["status"] for r in task_results(second_proc.stdout, CONVERGE_INCLUDE).values()} == {"skipping"}, second_proc.stdout[-3000:]
    # asked for, probes run on unchanged nodes too, and are still quiet
    proc = playbook("site.yml", lab, "-e", CLUSTER, "-e", "cni_node_probe=always")
    always = ok(proc)
    assert all(always[h]["changed"] == 0 for h in nodes), always
    assert re.search(r"Ping from the probe pod.*\n(ok: .*\n)+", proc.stdout), "cni_node_probe=always did not probe"
    # where the play installed the plugin runtime, no module fallback to skip
    assert "where this play did not install the plugin runtime" not in proc.stdout, proc.stdout[-3000:]
    assert "nnprobe" not in probe_namespaces(lab)


def test_a_drifted_plugin_runtime_is_repaired_by_the_next_run(lab):
    """cni_plugin's shell look (no module run on an up-to-date node) must never take a
    drifted node for current: a runtime file edited on one node is repaired by the
    next site.yml, which reports that node changed and the other not."""
    ok(playbook("site.yml", lab, "-e", CLUSTER))
    drifted, other = LAB_NAME + "-node1", LAB_NAME + "-node2"
    edit = "f=$(ls /opt/cni/bin/.nodenet-cni/*/nodenet_cni/skel.py) && chmod 0644 $f && echo '# drifted' >> $f && grep -c drifted $f"
    proc = run([os.path.join(VENV_BIN, "ansible"), "-i", lab, drifted, "-m", "ansible.builtin.shell", "-a", edit])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = playbook("site.yml", lab, "-e", CLUSTER, "-v")
    repaired = ok(proc)
    assert repaired[drifted]["changed"] > 0 and repaired[other]["changed"] == 0, repaired
    # the role's check took the drifted node for not current, by its plugin part, and the other for current
    checked = task_results(proc.stdout, CHECK_TASK)
    assert checked[drifted]["result"]["not_current"] == "plugin" and checked[other]["result"]["current"] is True, checked
    assert {h: r["status"] for h, r in task_results(proc.stdout, CONVERGE_INCLUDE).items()} == {drifted: "included", other: "skipping"}
    plugin_task = r"TASK \[nodenet\.cni\.cni_node : Install the nodenet CNI plugins\][^\n]*\n(?:(?!TASK )[^\n]*\n)*?changed: \[%s\]"
    assert re.search(plugin_task % re.escape(drifted), proc.stdout), "the drifted node's cni_plugin task did not change"
    # cni_node_probe=changed: the repaired node alone is probed, against the unchanged converged one
    attach = r"TASK \[nodenet\.cni\.cni_node : Attach a probe pod\][^\n]*\n((?:(?!TASK )[^\n]*\n)*)"
    probed = re.search(attach, proc.stdout)
    assert probed and "ok: [%s]" % drifted in probed.group(1) and "skipping: [%s]" % other in probed.group(1), proc.stdout[-4000:]
    check = "grep -c drifted /opt/cni/bin/.nodenet-cni/*/nodenet_cni/skel.py"
    proc = run([os.path.join(VENV_BIN, "ansible"), "-i", lab, drifted, "-m", "ansible.builtin.shell", "-a", check])
    assert "\n0" in proc.stdout or proc.stdout.rstrip().endswith("0"), proc.stdout
    again = ok(playbook("site.yml", lab, "-e", CLUSTER))
    assert all(again[h]["changed"] == 0 for h in (drifted, other)), again


def test_a_converged_node_costs_one_check_and_a_skipped_include(lab):
    """A no-change re-run: on every node the role's check (cni_node_check) finds the plugins, the
    agent and the node state current, and the install, agent and converge tasks are skipped as
    one include; site.yml runs the role's converge entry point (no subnets include of its own)."""
    ok(playbook("site.yml", lab, "-e", CLUSTER))
    proc = playbook("site.yml", lab, "-e", CLUSTER, "-v")
    counts = ok(proc)
    nodes = sorted(h for h in counts if h.startswith(LAB_NAME))
    assert len(nodes) == 2 and all(counts[h]["changed"] == 0 for h in nodes), counts
    checked = task_results(proc.stdout, CHECK_TASK)
    assert sorted(checked) == nodes, proc.stdout[-3000:]
    for name in nodes:
        result = checked[name]["result"]
        assert checked[name]["status"] == "ok" and result["current"] is True and result["not_current"] == "", result
        assert result["plugin"]["runtime_dir"].startswith("/opt/cni/bin/.nodenet-cni/"), result
        assert result["agent_status"]["digest"] == result["plugin"]["digest"] and result["state"]["changed"] is False, result
    assert {h: r["status"] for h, r in task_results(proc.stdout, CONVERGE_INCLUDE).items()} == {h: "skipping" for h in nodes}
    for task in ("Install the nodenet CNI plugins", "Converge the pod network config, bridge, routes and boot files",
                 "Assign pod subnets (when site.yml did not already)", "Attach a probe pod"):
        assert task not in proc.stdout, task
    assert "Validating arguments against arg spec 'converge'" in proc.stdout
    # under --diff the check does not run (the tasks show their diffs): every task runs, and nothing changes
    proc = playbook("site.yml", lab, "-e", CLUSTER, "--check", "--diff")
    counts = ok(proc)
    assert {h: r["status"] for h, r in task_results(proc.stdout, CHECK_TASK).items()} == {h: "skipping" for h in nodes}
    assert {h: r["status"] for h, r in task_results(proc.stdout, CONVERGE_INCLUDE).items()} == {h: "included" for h in nodes}
    assert all(counts[h]["changed"] == 0 for h in nodes), counts
    # asked for, the probe runs on current nodes in the runtime the check found (no module fallback)
    proc = playbook("site.yml", lab, "-e", CLUSTER, "-e", "cni_node_probe=always")
    assert all(c["changed"] == 0 for h, c in ok(proc).items() if h.startswith(LAB_NAME))
    assert re.search(r"TASK \[nodenet\.cni\.cni_node : Attach a probe pod\]", proc.stdout), proc.stdout[-3000:]
    assert "where this play did not install the plugin runtime" not in proc.stdout
    assert "nnprobe" not in probe_namespaces(lab)


def node_names(inventory: str) -> List[str]:
    listed = run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, "k8s_nodes", "--list-hosts"]).stdout.split()
    names = sorted(n for n in listed if n.startswith(LAB_NAME))
    assert len(names) == 2, listed
    return names


def on_node(inventory: str, node: str, command: str) -> str:
    proc = run([os.path.join(VENV_BIN, "ansible"), "-i", inventory, node, "-m", "ansible.builtin.shell", "-a", command])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_killed_agent_makes_the_node_not_current_and_the_full_path_restarts_it(lab):
    ok(playbook("site.yml", lab, "-e", CLUSTER))
    drifted, other = node_names(lab)
    # the lab's supervisor stops the agent on SIGTERM (agent-supervisor.sh)
    on_node(lab, drifted, "kill -TERM $(cat /etc/nodenet/agent-supervisor.pid); for i in $(seq 50); do "
                          "[ -e /etc/nodenet/agent-supervisor.pid ] || break; sleep 0.1; done; ! /opt/cni/bin/nodenet-agent --status")
    proc = playbook("site.yml", lab, "-e", CLUSTER, "-v")
    counts = ok(proc)
    checked = task_results(proc.stdout, CHECK_TASK)
    assert checked[drifted]["result"]["not_current"] == "agent" and "no agent serves" in checked[drifted]["result"]["msg"], checked
    assert checked[other]["result"]["current"] is True, checked
    assert {h: r["status"] for h, r in task_results(proc.stdout, CONVERGE_INCLUDE).items()} == {drifted: "included", other: "skipping"}
    started = task_results(proc.stdout, "Agent | Start the lab supervisor unless it runs, wait until the agent serves, restart it on a new runtime")
    assert list(started) == [drifted] and started[drifted]["status"] == "changed", started
    assert counts[drifted]["changed"] > 0 and counts[other]["changed"] == 0, counts
    # the node whose agent was restarted alone is probed, against the current one
    attached = task_results(proc.stdout, "Attach a probe pod")
    assert attached[drifted]["status"] == "ok" and attached[other]["status"] == "skipping", attached
    decided = list(task_results(proc.stdout, "Decide which nodes of the batch to probe").values())[0]["result"]["ansible_facts"]
    assert decided == {"cni_rollout_probing": [drifted], "cni_rollout_reference": other}, decided
    assert "nnprobe" not in probe_namespaces(lab)
    again = playbook("site.yml", lab, "-e", CLUSTER, "-v")
    assert all(r["result"]["current"] for r in task_results(again.stdout, CHECK_TASK).values()) and ok(again)[drifted]["changed"] == 0


def test_node_state_drift_makes_the_node_not_current_and_the_full_path_repairs_it(lab, tmp_path):
    """A peer route deleted in one lab node's namespace, then the network config edited on the
    other: the check names the state part that would change, --check predicts it without
    repairing, and the next run repairs that node alone and probes it alone."""
    ok(playbook("site.yml", lab, "-e", CLUSTER))
    first, second = node_names(lab)
    peer = on_nodes(lab, "cat /etc/nodenet/pod_subnet", tmp_path / "subnets")[first].split()[0]
    routes = "ip -j route show proto 77"
    on_node(lab, second, "ip route del %s proto 77" % peer)
    assert peer not in on_node(lab, second, routes)
    # --check: the check says not current, the converge task predicts the route, nothing is repaired
    proc = playbook("site.yml", lab, "-e", CLUSTER, "--check", "-v")
    counts = ok(proc)
    checked = task_results(proc.stdout, CHECK_TASK)
    assert checked[second]["result"]["not_current"] == "state" and checked[second]["result"]["state"]["changed_parts"] == ["routes"], checked
    assert checked[first]["result"]["current"] is True and counts[second]["changed"] > 0 and counts[first]["changed"] == 0, counts
    assert peer not in on_node(lab, second, routes), "--check repaired the route"
    proc = playbook("site.yml", lab, "-e", CLUSTER, "-v")
    counts = ok(proc)
    assert counts[second]["changed"] > 0 and counts[first]["changed"] == 0, counts
    assert {h: r["status"] for h, r in task_results(proc.stdout, CONVERGE_INCLUDE).items()} == {second: "included", first: "skipping"}
    converged = task_results(proc.stdout, "Converge the pod network config, bridge, routes and boot files")
    assert converged[second]["status"] == "changed" and converged[second]["result"]["changed_parts"] == ["routes"], converged
    assert peer in on_node(lab, second, routes)
    attached = task_results(proc.stdout, "Attach a probe pod")
    assert attached[second]["status"] == "ok" and attached[first]["status"] == "skipping", attached
    # the network config edited on the other node
    conflist = "/etc/cni/net.d/10-podnet.conflist"
    on_node(lab, first, "sed -i 's/\"hairpinMode\": true/\"hairpinMode\": false/' %s && grep -q '\"hairpinMode\": false' %s" % (conflist, conflist))
    proc = playbook("site.yml", lab, "-e", CLUSTER, "-v")
    counts = ok(proc)
    checked = task_results(proc.stdout, CHECK_TASK)
    assert checked[first]["result"]["not_current"] == "state" and "netconf" in checked[first]["result"]["state"]["changed_parts"], checked
    assert counts[first]["changed"] > 0 and counts[second]["changed"] == 0, counts
    attached = task_results(proc.stdout, "Attach a probe pod")
    assert attached[first]["status"] == "ok" and attached[second]["status"] == "skipping", attached
    assert '"hairpinMode": true' in on_node(lab, first, "cat " + conflist)
    assert "nnprobe" not in probe_namespaces(lab)


def test_verify_pings_every_pair_in_both_families(lab):
    proc = playbook("playbooks/verify.yml", lab)
    counts = ok(proc)
    assert all(c["changed"] == 0 for c in counts.values()), counts
    results = [line for line in proc.stdout.splitlines() if re.search(r"\b(ok|FAILED)\",?$", line)]
    v6 = [line for line in results if "fd00:10:244" in line.split("\"")[1].split()[-2]]
    v4 = [line for line in results if re.search(r" 10\.244\.\d+\.\d+\s+(ok|FAILED)", line)]
    # 2 nodes: each pings its gateway and the other's probe, per family
    assert len(v4) == 4 and len(v6) == 4, results
    assert not any("FAILED" in line for line in results), results


def test_one_group_variable_names_the_nodes(lab):
    counts = ok(playbook("site.yml", lab, "-e", CLUSTER, "-e", "cni_node_group=kube_node"))
    assert all(c["changed"] == 0 for h, c in counts.items() if h.startswith(LAB_NAME)), counts


def test_tags_probe_checks_every_node_with_the_module(lab):
    """`--tags probe` runs the probe alone: the role's tasks do not run, so no plugin runtime is at hand
    from this play and the probe goes through the cni_attach module; every node is checked (asked for),
    quietly, and nothing is left behind."""
    ok(playbook("site.yml", lab, "-e", CLUSTER))
    proc = playbook("site.yml", lab, "-e", CLUSTER, "--tags", "probe", "-e", "cni_node_probe=always")
    counts = ok(proc)
    assert "Install the nodenet CNI plugins" not in proc.stdout, proc.stdout[-3000:]
    module_attach = r"Attach a probe pod \(cni_attach, where this play did not install the plugin runtime\)[^\n]*\n(ok: .*\n){2}"
    assert re.search(module_attach, proc.stdout), proc.stdout[-3000:]
    nodes = sorted(h for h in counts if h.startswith(LAB_NAME))
    assert len(nodes) == 2, counts
    for name in nodes:  # the judge's success message: every target, every one answered
        judged = re.search(r'"msg": "%s: (\{.*\})"' % re.escape(name), proc.stdout)
        assert judged and "'gateway " in judged[1] and "False" not in judged[1], proc.stdout[-3000:]
    assert all(c["changed"] == 0 and c["failed"] == 0 for h, c in counts.items() if h.startswith(LAB_NAME)), counts
    assert "nnprobe" not in probe_namespaces(lab)


def test_a_missing_or_empty_node_group_fails_the_play(lab, tmp_path):
    proc = playbook("site.yml", lab, "-e", "cni_node_group=nosuch")
    assert proc.returncode != 0 and "The node group 'nosuch' is not in the inventory" in proc.stdout, proc.stdout
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  children:\n    k8s_nodes: {}\n")
    proc = playbook("site.yml", str(empty))
    assert proc.returncode != 0 and "The node group 'k8s_nodes' is empty" in proc.stdout, proc.stdout


def test_the_role_refuses_nodes_outside_the_group_once_for_all(lab, tmp_path):
    """The role's subnets entry point on hosts that are not all in cni_node_group: one check for the
    play (run_once), which names the outsiders and stops every host before anything is read."""
    listed = run([os.path.join(VENV_BIN, "ansible"), "-i", lab, "k8s_nodes", "--list-hosts"]).stdout.split()
    names = sorted(n for n in listed if n.startswith(LAB_NAME))
    assert len(names) == 2, listed
    only_first = tmp_path / "only_first.yml"
    only_first.write_text("all:\n  children:\n    only_first:\n      hosts:\n        %s: {}\n" % names[0])
    play = tmp_path / "subnets.yml"
    play.write_text("- hosts: k8s_nodes\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.import_role:\n        name: nodenet.cni.cni_node\n        tasks_from: subnets.yml\n")
    proc = run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", lab, "-i", str(only_first), str(play), "-e", "cni_node_group=only_first"])
    assert proc.returncode != 0 and "but %s not in it" % names[1] in proc.stdout, proc.stdout[-3000:]
    assert recap(proc)[names[0]]["failed"] == 1, proc.stdout[-3000:]
    assert "Read this node" not in proc.stdout, "the check did not stop the play"


def test_a_probe_without_an_answer_fails_the_play_and_leaves_nothing(lab, tmp_path):
    """Probes are checks: when a probe pod gets no answer from the reference node's probe, the play
    fails and says from where, and the probes (namespace, lease) are removed all the same. The lost
    answer is made real: one node's netns drops every forwarded packet (its own nft table, removed
    by exact name afterwards), so the cross-node ping dies there whichever node is the reference."""
    ok(playbook("site.yml", lab, "-e", CLUSTER))
    listed = run([os.path.join(VENV_BIN, "ansible"), "-i", lab, "k8s_nodes", "--list-hosts"]).stdout.split()
    blocked = sorted(n for n in listed if n.startswith(LAB_NAME))[1]
    table = "nntest%s" % secrets.token_hex(2)

    def nft(*args: str) -> subprocess.CompletedProcess:
        return run([os.path.join(VENV_BIN, "ansible"), "-i", lab, blocked, "-m", "ansible.builtin.command",
                    "-a", json.dumps({"argv": ["nft", *args]})])

    added = nft("add table inet %s { chain probe_block { type filter hook forward priority -300; policy drop; }; }" % table)
    try:
        assert added.returncode == 0, added.stdout + added.stderr
        proc = playbook("site.yml", lab, "-e", CLUSTER, "-e", "cni_node_probe=always")
        assert proc.returncode != 0, proc.stdout[-4000:]
        fatal = proc.stdout[proc.stdout.find("fatal:"):][:3000]
        assert re.search(r"pod network check failed on %s[-\w]*: no answer from" % LAB_NAME, proc.stdout), fatal
        assert any(c["failed"] for h, c in recap(proc).items() if h.startswith(LAB_NAME)), proc.stdout[-3000:]
    finally:
        removed = nft("delete table inet %s" % table)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "nnprobe" not in probe_namespaces(lab), "a failed probe left its pod behind"
    leases = on_nodes(lab, "ls -A /var/lib/cni/networks/podnet", tmp_path / "leases")
    for name, listing in leases.items():
        assert not [f for f in listing.split() if f[0].isdigit() or ":" in f], (name, listing)
    # with the drop gone the same run passes again, quietly
    again = ok(playbook("site.yml", lab, "-e", CLUSTER, "-e", "cni_node_probe=always"))
    assert all(c["changed"] == 0 for h, c in again.items() if h.startswith(LAB_NAME)), again
