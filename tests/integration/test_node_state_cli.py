# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_node_state with runtime_dir: the module's work run by its action plugin in the node's
plugin runtime (cni/node/state_cli.py, no module run), against the module itself.

Two "nodes" (test network namespaces, files under each test's temp dir) get the same tasks,
one through the runtime, one through the module: the results must be the same. The node's
Python is a wrapper that logs how it was started, so a test sees which path ran."""

import json
import os
import shutil
import stat

import pytest
from ansiblerun import NODE_PYTHON, run_module
from test_cni_node_state import bridge_addresses, files, owned_routes, parts

from ansible_collections.nodenet.cni.plugins.module_utils import node_state
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import state_cli

M = "nodenet.cni.cni_node_state"


def make_node(netns_factory, runtime, path):
    ns = netns_factory("sr")
    ns.runtime = runtime
    ns.run(["ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"])
    ns.run(["ip", "link", "set", "eth9p", "up"])
    ns.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "eth9"])
    ns.run(["ip", "link", "set", "eth9", "up"])
    path.mkdir()
    ns.tmp = path
    (path / "net.d").mkdir()
    return ns


@pytest.fixture
def python_log(tmp_path):
    """A node Python that logs each start's arguments (one line each), then is python3."""
    log = tmp_path / "python.log"
    wrapper = tmp_path / "python3"
    wrapper.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\nexec %s "$@"\n' % (log, NODE_PYTHON))
    wrapper.chmod(0o755)
    log.write_text("")
    return wrapper, log


@pytest.fixture
def runtime_dir(cni_bin):
    return installer.launcher_runtime_dir(os.path.join(cni_bin, "nodenet-bridge"))


@pytest.fixture
def nodes(netns_factory, cni_bin, tmp_path):
    """(raw, module): two fresh nodes."""
    return make_node(netns_factory, cni_bin, tmp_path / "raw"), make_node(netns_factory, cni_bin, tmp_path / "mod")


def starts(log):
    """The node Python's starts since the last look: ("cli" | "module", arguments)."""
    lines = log.read_text().splitlines()
    log.write_text("")
    return ["cli" if "state_cli" in line else "module" for line in lines]


def normal(res, node):
    """The result with the node's own paths and the screen output taken out."""
    res = dict(res)
    res.pop("_stdout", None)
    res.pop("_stderr", None)
    if isinstance(res.get("bridge"), dict) and "mac" in res["bridge"].get("bridge", {}):
        res["bridge"] = dict(res["bridge"], bridge=dict(res["bridge"]["bridge"], mac="<mac>"))  # each node's own
    return json.loads(json.dumps(res, sort_keys=True).replace(str(node.tmp), "<node>"))


def screen(res, node):
    """What ansible printed (warnings, the diff), without the node's paths and the bridge's MAC."""
    warnings = [line for line in res["_stderr"].splitlines() if "WARNING" in line]
    text = "\n".join([res["_stdout"]] + warnings).replace(str(node.tmp), "<node>")
    mac = (res.get("bridge") or {}).get("bridge", {}).get("mac")
    return text.replace(mac, "<mac>") if mac else text


def both(nodes, args_of, runtime_dir, python_log, check=False, diff=False, expect=("cli",)):
    """The task on the raw node (with runtime_dir) and on the module node (without): the same results,
    the same screen output; the raw node's Python started as `expect` says. Returns both results."""
    expect = list(expect)
    raw, mod = nodes
    wrapper, log = python_log
    raw_args = dict(args_of(raw), runtime_dir=runtime_dir)
    mod_args = dict(args_of(mod), runtime_dir="")
    r = run_module(M, raw_args, netns=raw.name, bin_dir=raw.runtime, check=check, diff=diff, interpreter=str(wrapper))
    raw_starts = starts(log)
    m = run_module(M, mod_args, netns=mod.name, bin_dir=mod.runtime, check=check, diff=diff, interpreter=str(wrapper))
    assert starts(log) == ["module"], "without runtime_dir the module runs"
    assert raw_starts == expect, "the task with runtime_dir started the node's Python as %s, not %s" % (raw_starts, expect)
    nr, nm = normal(r, raw), normal(m, mod)
    assert nr == nm
    assert screen(r, raw) == screen(m, mod), "the same warnings and diff on screen"
    return r, m


def test_converge_check_diff_and_no_change_are_the_modules(nodes, runtime_dir, python_log):
    raw, _mod = nodes
    r, _m = both(nodes, parts, runtime_dir, python_log, check=True, diff=True)
    assert r["changed_parts"] == ["netconf", "bridge", "routes", "boot"] and "nodenet-cni-boot.service" in r["_stdout"], r
    assert bridge_addresses(raw) is None and files(raw) == [], "check mode touched nothing"
    r, _m = both(nodes, parts, runtime_dir, python_log, diff=True)
    assert r["changed"] and r["changed_parts"] == ["netconf", "bridge", "routes", "boot"], r
    assert bridge_addresses(raw) == ["10.244.1.1/24"] and owned_routes(raw) == ["10.244.2.0/24 via 192.168.77.12"]
    assert "+++ after" in r["_stdout"] and "nodenet/boot.json" in files(raw)
    r, _m = both(nodes, parts, runtime_dir, python_log)
    assert not r["changed"] and r["changed_parts"] == [], r
    r, _m = both(nodes, parts, runtime_dir, python_log, check=True, diff=True)
    assert not r["changed"]
    # one part drifts: check mode predicts it, then it is put back
    for node in nodes:
        node.run(["ip", "link", "set", "cni0", "mtu", "1300"])
    r, _m = both(nodes, parts, runtime_dir, python_log, check=True, diff=True)
    assert r["changed_parts"] == ["bridge"] and "1300" in r["_stdout"], r
    r, _m = both(nodes, parts, runtime_dir, python_log)
    assert r["changed_parts"] == ["bridge"] and r["bridge"]["bridge"]["mtu"] == 1400


def test_pod_subnets_and_netconf_warnings_are_the_modules(nodes, runtime_dir, python_log):
    def args(node):
        a = {"pod_subnets": {"path": str(node.tmp / "nodenet" / "pod_subnet"), "subnets": ["10.244.1.0/24"]}, "netconf": parts(node)["netconf"]}
        a["netconf"] = dict(a["netconf"], lint="warn", plugins=a["netconf"]["plugins"] + [{"type": "nnsr-no-such-plugin"}])
        return a

    r, _m = both(nodes, args, runtime_dir, python_log, diff=True)
    assert r["changed_parts"] == ["pod_subnets", "netconf"] and "+10.244.1.0/24" in r["_stdout"], r
    assert "[WARNING]: netconf: plugin-missing: " in r["_stderr"] and "nnsr-no-such-plugin" in r["_stderr"], r["_stderr"]


@pytest.mark.parametrize(
    "part, change, words, expect",
    [
        # the part's argument spec: refused on the controller, the node's Python is not even started
        ("bridge", {"mtu": "big"}, "bridge: argument 'mtu'", []),
        ("bridge", {"colour": "red"}, "bridge: unsupported options: colour", []),
        # pod_subnets' options are the module's own (AnsibleModule checks them): its refusal, in its words
        ("pod_subnets", {"state": "gone"}, "pod_subnets", ["module"]),
        # the back-end's own checks, on the node, before anything is looked at
        ("bridge", {"mtu": 10}, "bridge.mtu", ["cli"]),
        ("routes", {"protocol": 3}, "routes.protocol", ["cli"]),
        ("netconf", {"cni_version": "9.9.9"}, "netconf.cni_version", ["cli"]),
        ("boot", {"command": ["python3"]}, "boot.command", ["cli"]),
        ("pod_subnets", {"subnets": ["10.244.1.5/24"]}, "pod_subnets.subnets[0]", ["cli"]),
    ],
)
def test_bad_options_fail_the_same_and_change_nothing(nodes, runtime_dir, python_log, part, change, words, expect):
    def args(node):
        a = dict(parts(node), pod_subnets={"path": str(node.tmp / "pod_subnet"), "subnets": ["10.244.1.0/24"]})
        a[part] = dict(a[part], **change)
        return a

    r, _m = both(nodes, args, runtime_dir, python_log, expect=expect)
    assert r.get("failed") and words in r["msg"], r
    for node in nodes:
        assert bridge_addresses(node) is None and owned_routes(node) == [] and files(node) == []


def test_an_option_ansiblemodule_refuses_is_left_to_the_module(nodes, runtime_dir, python_log):
    r, _m = both(nodes, lambda node: {"colour": "red", "boot": parts(node)["boot"]}, runtime_dir, python_log, expect=["module"])
    assert r.get("failed") and "colour" in r["msg"], r


def test_a_failing_part_fails_the_same(nodes, runtime_dir, python_log):
    for node in nodes:
        node.run(["ip", "route", "add", "10.244.2.0/24", "via", "192.168.77.99"])  # a route the module does not own
    r, _m = both(nodes, parts, runtime_dir, python_log)
    assert r.get("failed") and r["msg"].startswith("routes.routes: ") and r["failed_part"] == "routes", r
    assert r["changed_parts"] == ["netconf", "bridge"] and r["changed"]
    assert owned_routes(nodes[0]) == [] and "nodenet/boot.json" not in files(nodes[0])


def older_runtime(runtime_dir, where, protocol=None):
    """A copy of the runtime without the node-state entry point, or (`protocol`) speaking another protocol."""
    shutil.copytree(runtime_dir, str(where), symlinks=True)
    node_dir = where / "nodenet_cni" / "node"
    for pyc in (node_dir / "__pycache__").glob("state_cli.*"):
        pyc.unlink()
    source = node_dir / "state_cli.py"
    if protocol is None:
        source.unlink()
    else:
        source.chmod(stat.S_IRUSR | stat.S_IWUSR)
        source.write_text(source.read_text().replace("\nPROTOCOL = %d\n" % state_cli.PROTOCOL, "\nPROTOCOL = %d\n" % protocol))
    return str(where)


@pytest.mark.parametrize("which", ["missing", "not-a-runtime", "without-entry-point", "other-protocol"])
def test_without_a_runtime_with_the_entry_point_the_module_runs(nodes, runtime_dir, python_log, tmp_path, which):
    where = {
        "missing": lambda: str(tmp_path / "nnsr-no-such-runtime"),
        "not-a-runtime": lambda: str(tmp_path),
        "without-entry-point": lambda: older_runtime(runtime_dir, tmp_path / "older"),
        "other-protocol": lambda: older_runtime(runtime_dir, tmp_path / "newer", protocol=state_cli.PROTOCOL + 1),
    }[which]()
    r, _m = both(nodes, parts, where, python_log, diff=True, expect=["cli", "module"])
    assert r["changed_parts"] == ["netconf", "bridge", "routes", "boot"] and bridge_addresses(nodes[0]) == ["10.244.1.1/24"], r


def test_the_bootstrap_falls_back_only_for_what_it_names(runtime_dir, tmp_path):
    """The check the action runs first, on its own: exit 3 with a reason, else the entry point's answer."""
    import subprocess

    def boot(rdir, stdin):
        return subprocess.run([NODE_PYTHON, "-B", "-I", "-S", "-c", node_state.BOOTSTRAP, rdir, str(state_cli.PROTOCOL)],
                              input=stdin, capture_output=True, text=True, timeout=60, check=False)

    done = boot(older_runtime(runtime_dir, tmp_path / "older"), "{}")
    assert done.returncode == node_state.FALLBACK_RC and "no node-state entry point" in json.loads(done.stdout)["nodenet_cni_fallback"]
    done = boot(runtime_dir, json.dumps({"protocol": state_cli.PROTOCOL, "params": {}, "check": False, "diff": False}))
    assert done.returncode == 0 and json.loads(done.stdout) == {"result": {"changed": False, "changed_parts": []}, "warnings": []}, done
    done = boot(runtime_dir, json.dumps({"protocol": state_cli.PROTOCOL, "params": {"colour": {}}, "check": False, "diff": False}))
    assert done.returncode == 2 and "colour" in json.loads(done.stdout)["result"]["msg"], done


def test_the_agent_asked_in_the_same_run_answers_as_its_status_command(runtime_dir, tmp_path):
    """cni_node_check's request: the node state and the agent's `--status --expect-digest` verdict
    in one run. In a throwaway namespace with no agent: exit code 3 (none serves), the status
    the command prints, and the state's answer unchanged; a malformed agent request is refused."""
    import subprocess

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.agent import STATUS_NOT_SERVING

    ns = "nnsa%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
    try:
        def boot(request):
            return subprocess.run(["ip", "netns", "exec", ns, NODE_PYTHON, "-B", "-I", "-S", "-c", node_state.BOOTSTRAP, runtime_dir,
                                   str(state_cli.PROTOCOL)], input=json.dumps(request), capture_output=True, text=True, timeout=60, check=False)

        base = {"protocol": state_cli.PROTOCOL, "params": {}, "check": True, "diff": False}
        agent = {"port": 1021, "run_dir": str(tmp_path / "run"), "expect_digest": "0" * 64}
        done = boot(dict(base, agent=agent))
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["result"] == {"changed": False, "changed_parts": []}
        assert answer["agent"]["rc"] == STATUS_NOT_SERVING and answer["agent"]["status"]["running"] is False, answer
        launcher = subprocess.run(["ip", "netns", "exec", ns, NODE_PYTHON, "-I", "-S", "-c",
                                   "import sys; sys.path.insert(0, %r); from nodenet_cni.agent.server import main; "
                                   "raise SystemExit(main(['--status', '--expect-digest', %r], port=1021, run_dir=%r))"
                                   % (runtime_dir, agent["expect_digest"], agent["run_dir"])],
                                  capture_output=True, text=True, timeout=60, check=False)
        assert launcher.returncode == answer["agent"]["rc"] and json.loads(launcher.stdout) == answer["agent"]["status"]
        done = boot(dict(base, agent={"port": "1021"}))
        assert done.returncode == 2 and "agent" in json.loads(done.stdout)["result"]["msg"], done
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False, timeout=30)
