# SPDX-License-Identifier: GPL-3.0-or-later
"""site.yml's probe attach without a module run: the plugin runtime's
attach entry point (nodenet_cni.node.attach_cli), exec'd as the probe tasks
run it on a node.

The command line is the role's: `printf '%s' <request> | python3 -I -S -c
<cni_node_probe_cli> <runtime dir>` through sh, with cni_node_probe_cli read
from roles/cni_node/vars/main.yml, the node's own python3 and a runtime
installed by the same code as cni_plugin (the `cni_bin` fixture). The "node"
is a test network namespace entered with `nsenter --net` only (as
attachrun.run_on_node: a probe namespace must outlive the call), the CNI dirs
are under tmp_path, and no agent answers there, so the shims run the plugins
in-process.

Safety: probe names come from `probes` (the run's unique prefix) and are
deleted by exact name at teardown; the node namespace is netns_factory's.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from typing import Any, Dict, Optional, Tuple

import pytest
import yaml
from attachrun import cache_files, conflist, leases, netns_exists, run_on_node, seed_conf
from ansiblerun import ROOT
from test_cni_attach import addresses_in, failing_plugin

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

NODE_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
ROLE_VARS = os.path.join(ROOT, "roles", "cni_node", "vars", "main.yml")


@pytest.fixture(scope="module")
def probe_cli() -> str:
    """The bootstrap the probe tasks pass to python3 -c (plain text, no Jinja)."""
    with open(ROLE_VARS, encoding="utf-8") as f:
        cli = yaml.safe_load(f)["cni_node_probe_cli"]
    assert "{{" not in cli
    return cli


@pytest.fixture
def node(netns_factory):
    return netns_factory("acli")


@pytest.fixture
def runtime_dir(cni_bin) -> str:
    rdir = installer.launcher_runtime_dir(os.path.join(cni_bin, "nodenet-bridge"))
    assert rdir and os.path.isfile(os.path.join(rdir, "nodenet_cni", "node", "attach_cli.py")), rdir
    # sealed with the rest of the runtime: the entry point and its pyc are in the MANIFEST
    with open(os.path.join(rdir, installer.MANIFEST)) as f:
        sealed = json.load(f)["sha256"]
    assert "nodenet_cni/node/attach_cli.py" in sealed and any(p.startswith("nodenet_cni/node/__pycache__/attach_cli.") for p in sealed)
    return rdir


def attach(node, cli: str, rdir: str, request: Any, timeout: float = 120) -> Tuple[int, Optional[Dict[str, Any]], str]:
    """(exit code, stdout JSON or None, stderr) of the probe's raw command in `node`."""
    body = request if isinstance(request, str) else json.dumps(request)
    line = "printf '%%s' %s | %s -I -S -c %s %s" % (shlex.quote(body), shlex.quote(NODE_PYTHON), shlex.quote(cli), shlex.quote(rdir))
    proc = subprocess.run(["nsenter", "--net=" + node.path, "--", "/bin/sh", "-c", line], capture_output=True, text=True, timeout=timeout, check=False)
    try:
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        out = None
    return proc.returncode, out, proc.stderr


def link_flags(name: str, ifname: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", name, "cat", "/sys/class/net/%s/flags" % ifname], capture_output=True, text=True, timeout=30, check=True)
    return int(out.stdout.strip(), 16)


def nothing_left(dirs, name: str, network: str) -> None:
    assert not netns_exists(name), "the probe's namespace is left"
    assert cache_files(dirs.cache_dir) == [], "a cache entry is left"
    assert leases(dirs.data_dir, network) == [], "a lease is left"
    marker_dir = os.path.join(dirs.cache_dir, "nodenet-attach")
    assert not os.path.isdir(marker_dir) or not os.listdir(marker_dir), "a namespace marker is left"


def test_attach_prints_the_module_result_and_remove_leaves_nothing(node, dirs, probes, probe_cli, runtime_dir):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    request = dirs.args(name=name, network="mynet")

    rc, res, err = attach(node, probe_cli, runtime_dir, request)
    assert rc == 0 and err == "", err
    assert res["changed"] and res["netns_created"] and res["netns"] == "/var/run/netns/" + name
    assert res["result"]["cniVersion"] == "1.0.0" and res["result"]["ips"][0]["address"] == "10.13.3.8/22"
    assert res["result"]["ips"][0]["gateway"] == "10.13.3.254"
    assert res["config"]["file"].endswith("/cni.conf") and res["config"]["name"] == "mynet"
    [add] = res["trace"]
    assert add["command"] == "ADD" and add["exit_code"] == 0 and add["path"] == os.path.join(dirs.bin_dirs[0], "nodenet-bridge")
    assert add["env"]["CNI_CONTAINERID"] == name and add["env"]["CNI_NETNS"] == "/var/run/netns/" + name
    assert res["cache_file"] == os.path.join(dirs.cache_dir, "results", "mynet-%s-eth0" % name)
    assert cache_files(dirs.cache_dir) == ["mynet-%s-eth0" % name] and leases(dirs.data_dir, "mynet") == ["10.13.3.8"]
    # a pod as containerd leaves it: lo up, eth0 with its address
    assert link_flags(name, "lo") & 1, "lo is down in the probe"
    assert addresses_in(name) == ["10.13.3.8/22"]

    # the module's result, key for key (the module adds only Ansible's own keys)
    other = probes.new()
    module = run_on_node("nodenet.cni.cni_attach", dirs.args(name=other, network="mynet"), node)
    assert not module.get("failed"), module.get("msg")
    assert set(res) == set(module) - {"invocation", "_stdout", "_stderr", "failed", "diff"}, sorted(set(module) ^ set(res))
    assert module["result"]["ips"][0]["address"] == "10.13.3.9/22"
    rc, gone, err = attach(node, probe_cli, runtime_dir, dict(dirs.args(name=other, network="mynet"), state="absent"))
    assert rc == 0 and gone["changed"] and not netns_exists(other), err

    # attached again: kept, nothing exec'd
    rc, again, err = attach(node, probe_cli, runtime_dir, request)
    assert rc == 0 and not again["changed"] and again["trace"] == [] and again["result"] == res["result"], err

    rc, gone, err = attach(node, probe_cli, runtime_dir, dict(request, state="absent"))
    assert rc == 0 and err == "", err
    assert gone["changed"] and [r["command"] for r in gone["trace"]] == ["DEL"] and gone["trace"][0]["exit_code"] == 0
    assert "delete network namespace /var/run/netns/%s" % name in gone["actions"]
    nothing_left(dirs, name, "mynet")

    rc, again, err = attach(node, probe_cli, runtime_dir, dict(request, state="absent"))
    assert rc == 0 and not again["changed"] and again["trace"] == [], err


# request -> (exit code, what stderr's one line says): refused before anything is read or made
BAD_REQUESTS = [
    ("not json", 2, "cni_attach: the request on stdin is not JSON"),
    ("[1, 2]", 2, "cni_attach: the request on stdin must be a JSON object of cni_attach options, got list"),
    ({"name": "{name}", "colour": "red"}, 2, "cni_attach: colour: not a cni_attach option"),
    ({"network": "mynet"}, 2, "cni_attach: name: required"),
    ({"name": "{name}", "state": "gone"}, 2, "cni_attach: state: must be one of present, checked, absent, got 'gone'"),
    ({"name": "{name}", "ifname": 5}, 2, "cni_attach: ifname: must be str, got 5"),
    ({"name": "{name}", "bin_dir": "/opt/cni/bin"}, 2, "cni_attach: bin_dir: must be list"),
    ({"name": "{name}", "command_timeout": True}, 2, "cni_attach: command_timeout: must be int, got True"),
    ({"name": "{name}", "state": "absent", "command": "true"}, 2, "cni_attach: command: runs only with state=present"),
    # cni_attach's own option checks, in the runtime (attach.request_from_params)
    ({"name": "../etc"}, 1, "cni_attach: name: '../etc' is not a usable container ID"),
    ({"name": "{name}", "ifname": "a/b"}, 1, "cni_attach: ifname: 'a/b'"),
    ({"name": "{name}", "conf_dir": "net.d"}, 1, "cni_attach: conf_dir: 'net.d' must be an absolute path"),
    ({"name": "{name}", "bin_dir": []}, 1, "cni_attach: bin_dir: needs at least one directory"),
    ({"name": "{name}", "cni_args": {"K8S_POD": "a;b"}}, 1, "cni_attach: cni_args: value of 'K8S_POD'"),
]


@pytest.mark.parametrize("request_, code, message", BAD_REQUESTS, ids=[str(i) for i in range(len(BAD_REQUESTS))])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(node, dirs, probes, probe_cli, runtime_dir, request_, code, message):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    if isinstance(request_, dict):
        request_ = dict(dirs.args(), **{k: (v.replace("{name}", name) if isinstance(v, str) else v) for k, v in request_.items()})
    rc, out, err = attach(node, probe_cli, runtime_dir, request_)
    assert rc == code and err.startswith(message) and err.count("\n") == 1, (rc, err)
    assert "Traceback" not in err and out["failed"] and err == "cni_attach: %s\n" % out["msg"]
    nothing_left(dirs, name, "mynet")


def test_no_config_fails_with_the_runtime_message_and_makes_nothing(node, dirs, probes, probe_cli, runtime_dir):
    name = probes.new()
    rc, out, err = attach(node, probe_cli, runtime_dir, dirs.args(name=name))
    assert rc == 1 and err == "cni_attach: conf_dir: no net configurations found in %s\n" % dirs.conf_dir, err
    assert out["failed"] and out["msg"] == err[len("cni_attach: "):-1]
    nothing_left(dirs, name, "mynet")


def test_a_failing_add_is_undone_and_reported_with_its_trace(node, dirs, probes, probe_cli, runtime_dir, tmp_path, cni_bin):
    extra = tmp_path / "extra-bin"
    extra.mkdir()
    failing_plugin(str(extra))
    dirs.bin_dirs = [cni_bin, str(extra)]
    dirs.write("10-chain.conflist", conflist("chainnet", dirs.data_dir, "10.14.0.0/24", bridge="cni1", then=[{"type": "failer"}]))
    name = probes.new()
    rc, out, err = attach(node, probe_cli, runtime_dir, dirs.args(name=name))
    assert rc == 1 and "failer refuses ADD; on purpose" in err and err.count("\n") == 1, err
    steps = [(os.path.basename(r["path"]), r["command"]) for r in out["trace"]]
    assert steps == [("nodenet-bridge", "ADD"), ("failer", "ADD"), ("failer", "DEL"), ("nodenet-bridge", "DEL")]
    assert out["cleanup"] == {"del": "ok", "cache_removed": False, "netns_removed": True}
    nothing_left(dirs, name, "chainnet")


def test_a_missing_runtime_is_said_in_one_line(node, dirs, probes, probe_cli, tmp_path):
    dirs.write("cni.conf", seed_conf(dirs.data_dir, "1.0.0"))
    name = probes.new()
    missing = str(tmp_path / "no-runtime")
    rc, out, err = attach(node, probe_cli, missing, dirs.args(name=name))
    assert rc == 1 and out is None
    assert err == "cni_attach: no nodenet plugin runtime with the attach entry point in %s (cni_plugin installs it)\n" % missing
    nothing_left(dirs, name, "mynet")
