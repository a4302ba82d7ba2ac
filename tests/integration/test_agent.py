# SPDX-License-Identifier: GPL-3.0-or-later
"""The node agent behind the shims: who it serves, where it acts, and crashes.

Every agent here runs in a namespace the test made (never the root one) and
is stopped by the namespace's finalizer. Waiting is bounded polling, never
a timed assertion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

import cnitest
from cnitest import NetNS, PluginRun

BRIDGE = "nnagtbr0"


def shim(ns: NetNS, bin_dir: str, plugin: str, command: str, conf: Dict[str, Any], ctr: NetNS = None, container_id: str = "agt",
         cni_path: str = "", user: str = "") -> PluginRun:
    """Exec a shim in `ns` exactly as a runtime does (optionally as a non-root user)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": ctr.path if ctr else "",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": cni_path or bin_dir,
    }
    argv = ["ip", "netns", "exec", ns.name] + (["setpriv", "--reuid=%s" % user, "--regid=%s" % user, "--clear-groups"] if user else [])
    proc = subprocess.run(argv + [os.path.join(bin_dir, plugin)], input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=300,
                          check=False)
    return PluginRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def runtime_dir(bin_dir: str) -> str:
    with open(os.path.join(bin_dir, "nodenet-agent")) as f:
        return f.read().split("Python runtime in '", 1)[1].split("'", 1)[0]


def python_in(ns: NetNS, bin_dir: str, code: str, user: str = "") -> str:
    """Run the node's python3 with the installed runtime importable, inside `ns`."""
    prelude = "import sys, json; sys.path.insert(0, %r)\n" % runtime_dir(bin_dir)
    argv = ["ip", "netns", "exec", ns.name] + (["setpriv", "--reuid=%s" % user, "--regid=%s" % user, "--clear-groups"] if user else [])
    proc = subprocess.run(argv + ["/usr/bin/python3", "-I", "-c", prelude + code], capture_output=True, timeout=60, check=True)
    return proc.stdout.decode()


def stats(ns: NetNS, bin_dir: str) -> Dict[str, Any]:
    return json.loads(python_in(ns, bin_dir, "from nodenet_cni.agent import client; print(json.dumps(client.stats()))"))


NON_ROOT_CALLER = r"""
import json, socket, sys
sock = socket.create_connection(("127.0.0.1", 1021), timeout=30)
hello, key = sock.makefile("rb").readline().decode().split()
try:
    open("/run/nodenet-cni/agent-%s.token" % key).read()
    print("read the token")
except OSError as e:
    print("no token:", e)
env = json.loads(sys.argv[1])
fields = [b"0" * 48, b"bridge"] + [("%s=%s" % kv).encode() for kv in env.items()] + [b"", sys.argv[2].encode()]
sock.sendall(b"".join(f + b"\0" for f in fields))
data = b""
while True:
    chunk = sock.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\n")
print(json.dumps([int(head.split()[0]), body.decode()]))
"""


def bridge_conf(data_dir: str, subnet: str = "10.250.7.0/24", ipam_type: str = "nodenet-host-local") -> Dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "agtnet",
        "type": "nodenet-bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipam": {"type": ipam_type, "dataDir": data_dir, "ranges": [[{"subnet": subnet}]]},
    }


def links(ns: NetNS) -> List[str]:
    with ns.ipr() as ipr:
        return sorted(m.get_attr("IFLA_IFNAME") for m in ipr.get_links())


def leases(data_dir: str) -> List[str]:
    net = os.path.join(data_dir, "agtnet")
    return sorted(f for f in os.listdir(net) if f[0].isdigit()) if os.path.isdir(net) else []


def wait_for(predicate, what: str, rounds: int = 600, step: float = 0.1) -> None:
    """Bounded polling (a minute by default): a hang fails the test, it never passes it."""
    for _round in range(rounds):
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("gave up waiting for " + what)


@pytest.fixture
def node(netns_factory, cni_bin) -> NetNS:
    """A test "node" namespace with an agent serving it."""
    ns = netns_factory("agt")
    ns.start_agent(cnitest.AGENT_BIN)
    return ns


def test_agent_serves_a_bridge_add_and_del_in_its_namespace(node, netns_factory, cni_bin, data_dir):
    ctr = netns_factory("actr")
    conf = bridge_conf(data_dir)
    add = shim(node, cni_bin, "nodenet-bridge", "ADD", conf, ctr).ok()
    assert add.json["ips"][0]["address"] == "10.250.7.2/24"
    assert BRIDGE in links(node) and "eth0" in links(ctr)
    shim(node, cni_bin, "nodenet-bridge", "DEL", conf, ctr).ok()
    assert "eth0" not in links(ctr) and not leases(data_dir)
    counters = stats(node, cni_bin)
    # host-local ran inside the agent's bridge call, not as a call of its own
    assert counters["calls"] == 2 and counters["errors"] == 0 and counters["refused"] == 0
    assert counters["digest"] and runtime_dir(cni_bin).endswith(counters["digest"][:16])


def test_lease_files_a_call_drops_are_freed_once_it_answered(node, netns_factory, cni_bin, data_dir):
    """The worker holds the files a call replaces or removes (last_reserved_ip.0
    on the second ADD, the lease on DEL) only until its answer is out: the
    agent ends up holding none of them, and the names are as without it."""
    ctrs = [netns_factory("ahld%d" % i) for i in range(2)]
    conf = bridge_conf(data_dir)
    for i, ctr in enumerate(ctrs):
        shim(node, cni_bin, "nodenet-bridge", "ADD", conf, ctr, container_id="hold%d" % i).ok()
    shim(node, cni_bin, "nodenet-bridge", "DEL", conf, ctrs[0], container_id="hold0").ok()
    net = os.path.join(data_dir, "agtnet")
    assert leases(data_dir) == ["10.250.7.3"]
    with open(os.path.join(net, "last_reserved_ip.0")) as f:
        assert f.read() == "10.250.7.3"
    fd_dir = "/proc/%d/fd" % stats(node, cni_bin)["pid"]

    def dropped_files_held() -> List[str]:
        targets = []
        for fd in os.listdir(fd_dir):
            try:
                targets.append(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass  # closed meanwhile
        return [t for t in targets if t.startswith(net) and t.endswith("(deleted)")]

    wait_for(lambda: not dropped_files_held(), "the agent to free the files its calls dropped")
    shim(node, cni_bin, "nodenet-bridge", "DEL", conf, ctrs[1], container_id="hold1").ok()
    assert not leases(data_dir)


def test_token_is_root_only_and_a_non_root_caller_is_refused(node, netns_factory, cni_bin, data_dir):
    counters = stats(node, cni_bin)
    token = "/run/nodenet-cni/agent-%d-%d.token" % (counters["netns_inode"], counters["pid"])
    assert oct(os.stat(token).st_mode & 0o777) == "0o600" and os.stat(token).st_uid == 0
    assert oct(os.stat("/run/nodenet-cni").st_mode & 0o777) == "0o700"
    ctr = netns_factory("nrctr")
    request = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "evil", "CNI_NETNS": ctr.path, "CNI_IFNAME": "eth0", "CNI_PATH": cni_bin}
    # a local non-root user speaking the protocol by hand (it cannot import the root-only runtime)
    out = subprocess.run(["ip", "netns", "exec", node.name, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          "/usr/bin/python3", "-I", "-c", NON_ROOT_CALLER,
                          json.dumps(request), json.dumps(bridge_conf(data_dir))], capture_output=True, timeout=60, check=True).stdout.decode()
    first, second = out.splitlines()
    assert first.startswith("no token:") and "Permission denied" in first
    code, reply = json.loads(second)
    assert code == 1 and json.loads(reply)["code"] == 4 and "bad token" in json.loads(reply)["msg"]
    after = stats(node, cni_bin)
    assert after["calls"] == counters["calls"] and after["refused"] == counters["refused"] + 1
    assert links(ctr) == ["lo"] and BRIDGE not in links(node) and not leases(data_dir)


def test_a_caller_in_another_namespace_is_never_served_by_this_agent(node, netns_factory, cni_bin, data_dir):
    other = netns_factory("oth")  # no agent there: its shim runs the plugin itself, in `other`
    ctr = netns_factory("octr")
    conf = bridge_conf(data_dir)
    shim(other, cni_bin, "nodenet-bridge", "ADD", conf, ctr).ok()
    assert BRIDGE in links(other) and BRIDGE not in links(node)
    assert stats(node, cni_bin)["calls"] == 0
    shim(other, cni_bin, "nodenet-bridge", "DEL", conf, ctr).ok()
    assert stats(node, cni_bin)["calls"] == 0 and not leases(data_dir)


def test_a_stdin_too_big_for_the_agent_runs_in_the_shim(node, netns_factory, cni_bin):
    """Over the shim's limit (the agent's request limit less the env), nothing is sent: the plugin runs here."""
    max_stdin = int(python_in(node, cni_bin, "from nodenet_cni.agent import MAX_STDIN; print(MAX_STDIN)"))
    before = stats(node, cni_bin)
    conf = {"cniVersion": "0.4.0", "name": "big", "type": "nodenet-loopback", "pad": "x" * (max_stdin + 1)}
    version = shim(node, cni_bin, "nodenet-loopback", "VERSION", conf).ok()
    assert version.json["cniVersion"] == "0.4.0"  # the stdin the shim had read reached the plugin
    after = stats(node, cni_bin)
    # the shim greeted, saw the size and hung up before sending: the agent served nothing
    assert after["calls"] == before["calls"]
    # a large stdin under the limit goes to the agent, whole
    conf["pad"] = "y" * (1 << 20)
    shim(node, cni_bin, "nodenet-loopback", "VERSION", conf).ok()
    assert stats(node, cni_bin)["calls"] == after["calls"] + 1


FOREIGN_LISTENER = r"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 1021))
srv.listen(8)
print("listening", flush=True)
srv.settimeout(120)
conn, _ = srv.accept()
conn.sendall(b"not-an-agent/1 1-1\n")
conn.settimeout(60)
got = b""
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    got += chunk
print("received %d bytes" % len(got), flush=True)
"""


def test_a_listener_that_is_not_the_agent_gets_nothing_and_the_shim_runs_the_plugin(netns_factory, cni_bin):
    """Something else on the agent's port: the shim has read stdin, sends nothing, and runs the call itself with that stdin."""
    ns = netns_factory("fgn")
    listener = subprocess.Popen(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-I", "-c", FOREIGN_LISTENER], stdout=subprocess.PIPE)
    try:
        assert listener.stdout is not None and listener.stdout.readline() == b"listening\n"
        version = shim(ns, cni_bin, "nodenet-loopback", "VERSION", {"cniVersion": "0.4.0", "name": "fgn"}).ok()
        assert version.json["cniVersion"] == "0.4.0"  # the stdin the shim had read reached the plugin
        out, _err = listener.communicate(timeout=60)
        assert out == b"received 0 bytes\n"  # no token, no call
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait(timeout=30)


def test_two_agents_in_two_namespaces_each_serve_their_own(netns_factory, cni_bin, tmp_path):
    nodes = [netns_factory("two%d" % i) for i in range(2)]
    for ns in nodes:
        ns.start_agent(cnitest.AGENT_BIN)  # same port, same token dir: no collision
    ctrs = [netns_factory("twoc%d" % i) for i in range(2)]
    confs = []
    for i, (ns, ctr) in enumerate(zip(nodes, ctrs)):
        data = tmp_path / ("ipam%d" % i)
        data.mkdir()
        confs.append(bridge_conf(str(data), subnet="10.250.%d.0/24" % (10 + i)))
        res = shim(ns, cni_bin, "nodenet-bridge", "ADD", confs[-1], ctr).ok()
        assert res.json["ips"][0]["address"] == "10.250.%d.2/24" % (10 + i)
    for ns in nodes:
        assert BRIDGE in links(ns)
        assert stats(ns, cni_bin)["calls"] == 1
    assert stats(nodes[0], cni_bin)["pid"] != stats(nodes[1], cni_bin)["pid"]
    for ns, ctr, conf in zip(nodes, ctrs, confs):
        shim(ns, cni_bin, "nodenet-bridge", "DEL", conf, ctr).ok()
        assert "eth0" not in links(ctr)


@pytest.fixture
def paused_ipam(tmp_path, cni_bin):
    """An IPAM plugin that runs our host-local, then (ADD only) holds until released.

    It lets a test catch the agent mid-ADD: after the veth and the lease
    exist, before the answer. Returns (CNI_PATH, started file, release file).
    """
    d = tmp_path / "paused"
    d.mkdir()
    started, release = d / "started", d / "release"
    script = d / "paused-ipam"
    script.write_text(
        "#!/bin/bash\n"
        "out=$(%s/nodenet-host-local); rc=$?\n"
        "if [[ $CNI_COMMAND == ADD ]]; then\n"
        "  echo $$ > %s\n"
        "  for _ in $(seq 1200); do [[ -e %s ]] && break; sleep 0.1; done\n"
        "fi\n"
        "printf '%%s' \"$out\"\n"
        "exit $rc\n" % (cni_bin, started, release)
    )
    os.chmod(str(script), 0o755)
    yield "%s:%s" % (d, cni_bin), started, release
    release.touch()  # never leave it waiting


def _add_held_at_ipam(node, ctr, cni_bin, data_dir, paused_ipam) -> Tuple[Dict[str, Any], threading.Thread, Dict[str, PluginRun]]:
    """A bridge ADD through the shim, in a thread, once it waits in its IPAM step: (conf, thread, {"add": its run})."""
    cni_path, started, _release = paused_ipam
    conf = bridge_conf(data_dir, ipam_type="paused-ipam")
    result: Dict[str, PluginRun] = {}
    caller = threading.Thread(target=lambda: result.setdefault("add", shim(node, cni_bin, "nodenet-bridge", "ADD", conf, ctr, cni_path=cni_path)))
    caller.start()
    wait_for(started.exists, "the ADD to reach its IPAM step")
    return conf, caller, result


def test_kill_9_mid_add_gives_try_again_then_del_cleans_up_and_a_new_agent_serves(node, netns_factory, cni_bin, data_dir, paused_ipam):
    cni_path, _started, release = paused_ipam
    ctr = netns_factory("kctr")
    conf, caller, result = _add_held_at_ipam(node, ctr, cni_bin, data_dir, paused_ipam)
    assert "eth0" in links(ctr) and len(leases(data_dir)) == 1  # mid-ADD: veth and lease exist
    killed = stats(node, cni_bin)
    os.kill(killed["pid"], signal.SIGKILL)
    node.agent.proc.wait(timeout=60)
    caller.join(timeout=300)
    add = result["add"]
    assert add.rc == 1 and add.json["code"] == 11 and add.json["cniVersion"] == "1.0.0", add
    release.touch()

    node.start_agent(cnitest.AGENT_BIN)  # what the supervisor does
    shim(node, cni_bin, "nodenet-bridge", "DEL", conf, ctr, cni_path=cni_path).ok()
    assert links(ctr) == ["lo"] and not leases(data_dir)
    assert [name for name in links(node) if name.startswith("veth")] == []
    assert stats(node, cni_bin)["calls"] == 2  # bridge DEL, and the host-local DEL the paused IPAM exec'd
    # the killed agent's token file was swept by the new one
    assert not os.path.exists("/run/nodenet-cni/agent-%d-%d.token" % (killed["netns_inode"], killed["pid"]))


def test_sigterm_finishes_the_call_in_flight_then_exits(node, netns_factory, cni_bin, data_dir, paused_ipam):
    cni_path, _started, release = paused_ipam
    ctr = netns_factory("tctr")
    conf, caller, result = _add_held_at_ipam(node, ctr, cni_bin, data_dir, paused_ipam)
    agent = node.agent
    agent.proc.send_signal(signal.SIGTERM)
    # no longer accepting: a new call runs in the shim itself (in this namespace)
    version = shim(node, cni_bin, "nodenet-loopback", "VERSION", {"cniVersion": "1.0.0"}).ok()
    assert "supportedVersions" in version.json
    assert agent.proc.poll() is None  # still finishing the ADD
    release.touch()
    caller.join(timeout=300)
    assert result["add"].ok().json["ips"][0]["address"] == "10.250.7.2/24"
    assert agent.proc.wait(timeout=120) == 0
    node.agent = None
    assert "served 2 calls (0 errors)" in agent.stop()  # bridge ADD + the host-local ADD its IPAM exec'd
    shim(node, cni_bin, "nodenet-bridge", "DEL", conf, ctr, cni_path=cni_path).ok()  # fallback: no agent
    assert links(ctr) == ["lo"] and not leases(data_dir)


def test_an_agent_restart_under_load_loses_no_call(node, netns_factory, cni_bin, tmp_path):
    """Callers keep coming while the agent is replaced (a new runtime digest): every call succeeds."""
    data = str(tmp_path / "load")
    os.mkdir(data)
    conf = {"cniVersion": "1.0.0", "name": "agtnet", "type": "nodenet-host-local", "dataDir": data,
            "ranges": [[{"subnet": "10.251.0.0/16"}]]}
    conf = {"cniVersion": "1.0.0", "name": "agtnet", "type": "nodenet-host-local", "ipam": conf}
    ctr = netns_factory("lctr")
    runs: List[PluginRun] = []
    stop = threading.Event()
    phase = {"restarted": False, "after": 0}

    def load(worker: int) -> None:
        for i in range(2000):  # bounded
            if stop.is_set():
                return
            run = shim(node, cni_bin, "nodenet-host-local", "ADD", conf, ctr, container_id="w%d-%d" % (worker, i))
            runs.append(run)
            if phase["restarted"]:
                phase["after"] += 1

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(runs) >= 8, "calls through the first agent")
        old = node.agent
        old.proc.send_signal(signal.SIGTERM)
        assert old.proc.wait(timeout=120) == 0
        node.agent = None
        first = old.stop()
        node.start_agent(cnitest.AGENT_BIN)
        phase["restarted"] = True
        wait_for(lambda: phase["after"] >= 8, "calls through the new agent")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
    failed = [r for r in runs if r.rc != 0]
    assert not failed, failed[:3]
    assert len(leases(data)) == len(runs)  # every ADD has exactly its one address
    assert "served" in first and stats(node, cni_bin)["calls"] >= 1
