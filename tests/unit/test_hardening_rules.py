# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 10: the pure-logic halves of the hardening items (no root needed)."""

import os

from ansible_collections.nodenet.cni.plugins.module_utils.cni import fileio
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import cache


def test_temp_files_of_atomic_write_are_not_attachments(tmp_path):
    """Item 6: a crashed atomic_write leaves `.nodenet-*.tmp`; it is not an attachment."""
    entry = cache.CacheEntry(container_id="c1", network_name="net", ifname="eth0", config=b"{}", result={"cniVersion": "1.0.0"})
    path = cache.write_entry(str(tmp_path), entry)
    directory = os.path.dirname(path)
    # what atomic_write would leave if it died between write and rename
    with open(os.path.join(directory, fileio.TEMP_PREFIX + "abc123" + fileio.TEMP_SUFFIX), "wb") as f:
        f.write(entry.to_json())
    found = cache.list_attachments(str(tmp_path))
    assert [e.path for e in found] == [path]


def test_one_naming_rule_for_writer_and_reader(tmp_path, monkeypatch):
    seen = []
    real = os.rename

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    fileio.atomic_write(str(tmp_path / "x"), b"data", 0o600)
    assert seen and all(fileio.is_temp_name(n) for n in seen)
    assert not fileio.is_temp_name("net-c1-eth0")


def test_lint_findings_are_filtered_by_network_name_not_by_text():
    """Item 13: a network named "a" must not pick up the findings of networks b and c."""
    import json

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import confdir
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import lint

    def net(name, subnet):
        raw = {"cniVersion": "1.0.0", "name": name, "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "subnet": subnet}}]}
        return confdir.parse_conf_list(json.dumps(raw).encode(), "/%s.conflist" % name)

    nets = [net("a", "10.9.0.0/24"), net("b", "10.1.0.0/24"), net("c", "10.1.0.128/25")]
    findings = lint.overlapping_networks(nets)
    assert len(findings) == 1 and "a" in findings[0].msg  # "...and network..." contains an "a"
    assert lint.findings_about(findings, "a") == []
    assert lint.findings_about(findings, "b") == findings


GRANDCHILD_PLUGIN = """#!/bin/sh
# a plugin that started a delegate (the grandchild) and then hangs
sleep 300 &
echo $! > "{pidfile}"
sleep 300
"""


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _grandchild_after_timeout(tmp_path, run):
    import signal
    import time

    pidfile = tmp_path / "grandchild.pid"
    plugin = tmp_path / "hangs"
    plugin.write_text(GRANDCHILD_PLUGIN.format(pidfile=pidfile))
    plugin.chmod(0o755)
    run(str(plugin))
    pid = int(pidfile.read_text())
    try:
        for _attempt in range(50):  # SIGKILL is asynchronous: give the kernel a moment
            if not _alive(pid):
                return False
            time.sleep(0.02)
        return True
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)  # we started it


def test_runtime_exec_timeout_kills_the_plugins_process_group(tmp_path):
    """Item 9 (runtime/pluginexec.py)."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.pluginexec import PluginExec

    pe = PluginExec([str(tmp_path)], env={"PATH": "/usr/bin:/bin"}, timeout=1)
    rec = None

    def run(path):
        nonlocal rec
        rec = pe.run(path, pe.environment("ADD", "c1", "", "eth0"), b"{}")

    assert not _grandchild_after_timeout(tmp_path, run), "the plugin's child survived the timeout"
    assert "killed" in rec.error


def test_delegate_timeout_kills_the_delegates_process_group(tmp_path, monkeypatch):
    """Item 9 (invoke.py, the IPAM delegation path)."""
    import pytest

    from ansible_collections.nodenet.cni.plugins.module_utils.cni import invoke
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

    monkeypatch.setattr(invoke, "DELEGATE_TIMEOUT", 1)

    def run(path):
        env = {"PATH": "/usr/bin:/bin", "CNI_PATH": os.path.dirname(path)}
        with pytest.raises(CNIError, match="killed .* timeout"):
            invoke.delegate("ADD", os.path.basename(path), b'{"type": "bridge"}', env)

    assert not _grandchild_after_timeout(tmp_path, run)


def test_delegation_depth_is_bounded():
    """Item 7: the depth marker stops an ipam.type that leads back to a delegating plugin."""
    import pytest

    from ansible_collections.nodenet.cni.plugins.module_utils.cni import invoke
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

    env = {"CNI_PATH": "/nonexistent", invoke.DEPTH_ENV: str(invoke.MAX_DELEGATION_DEPTH)}
    with pytest.raises(CNIError, match="deep") as e:
        invoke.delegate("DEL", "host-local", b'{"type": "bridge"}', env)
    assert e.value.code == 7
    with pytest.raises(CNIError, match="names the plugin itself"):
        invoke.delegate("DEL", "bridge", b'{"type": "bridge"}', {"CNI_PATH": "/nonexistent"})


def test_bridge_rollback_reports_failed_undo_steps_and_runs_the_rest():
    """Item 8 (bridge Rollback): every step runs; failures are reported, not dropped."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.plugin.bridge import Rollback

    report, ran = [], []
    undo = Rollback(report)
    undo.push(lambda: ran.append("first"))

    def failing_step():
        raise OSError("link busy")

    undo.push(failing_step)
    undo.run()
    assert ran == ["first"]
    assert len(report) == 1 and "link busy" in report[0]


def _portmap_add(monkeypatch, setup_error, teardown_error):
    import json

    from ansible_collections.nodenet.cni.plugins.module_utils.cni import skel
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.net import hostport

    calls = []

    def setup(*a):
        raise setup_error

    def teardown(*a):
        calls.append("teardown")
        if teardown_error is not None:
            raise teardown_error

    monkeypatch.setattr(hostport, "ipt_setup", setup)
    monkeypatch.setattr(hostport, "nft_teardown", teardown)
    monkeypatch.setattr(hostport, "ipt_teardown", lambda *a: calls.append("ipt_teardown"))
    conf = {"cniVersion": "1.0.0", "name": "pm", "type": "portmap", "backend": "iptables",
            "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5/24"}]},
            "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80}]}}
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/nonexistent/netns", "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}
    code, out, err = skel.run("portmap", env, json.dumps(conf).encode())
    return code, json.loads(out), err, calls


def test_portmap_failing_undo_keeps_the_original_error_and_reports_on_stderr(monkeypatch):
    """Item 8 (portmap): a failing teardown must not replace the error that made ADD fail."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

    code, out, err, calls = _portmap_add(monkeypatch, CNIError(999, "setup failed"), CNIError(999, "teardown failed"))
    assert code == 1 and out["msg"] == "setup failed"
    assert "teardown failed" in err
    assert calls == ["teardown", "ipt_teardown"], "both backends are cleaned even when one fails"


def test_portmap_rolls_back_on_any_failure_not_only_cnierror(monkeypatch):
    code, out, err, calls = _portmap_add(monkeypatch, OSError(28, "No space left on device"), None)
    assert code == 1 and "No space left" in out["msg"]
    assert calls == ["teardown", "ipt_teardown"]


def test_ensure_data_dir_refuses_a_symlink_and_leaves_its_target_alone(tmp_path):
    """Item 5: root must not chmod whatever a symlinked dataDir points to."""
    import pytest

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import netconf_file

    target = tmp_path / "victim"
    target.mkdir(mode=0o755)
    target.chmod(0o755)
    link = tmp_path / "data"
    link.symlink_to(target)
    assert not netconf_file.data_dir_ok(str(link))
    with pytest.raises(OSError, match="symbolic link"):
        netconf_file.ensure_data_dir(str(link))
    assert target.stat().st_mode & 0o777 == 0o755
    real = tmp_path / "real"
    assert netconf_file.ensure_data_dir(str(real)) and netconf_file.data_dir_ok(str(real))


def test_lease_store_refuses_a_symlinked_network_dir(tmp_path):
    """Item 5: no `lock` or lease written through a symlinked <dataDir>/<network>."""
    import pytest

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import Store
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "net").symlink_to(target)
    with pytest.raises(CNIError, match="symbolic link"):
        Store(str(tmp_path / "data"), "net")
    assert os.listdir(target) == []
    # and a symlink in place of the lock file
    (tmp_path / "data" / "net2").mkdir()
    (tmp_path / "data" / "net2" / "lock").symlink_to(tmp_path / "planted-lock")
    with pytest.raises(CNIError, match="symbolic link"):
        Store(str(tmp_path / "data"), "net2")
    assert not (tmp_path / "planted-lock").exists()


def test_attach_marker_never_follows_a_symlink(tmp_path):
    """Item 5: the cni_attach marker: O_TRUNC through a planted symlink truncated its target."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import attach

    victim = tmp_path / "victim"
    victim.write_text('{"netns": "/var/run/netns/someone-else"}')
    markers = tmp_path / attach.MARKER_DIR
    markers.mkdir()
    (markers / "probe").symlink_to(victim)
    assert attach.read_marker(str(tmp_path), "probe") is None, "a symlinked marker is not ours"
    attach.write_marker(str(tmp_path), "probe", "/var/run/netns/probe")
    assert victim.read_text() == '{"netns": "/var/run/netns/someone-else"}'
    assert not (markers / "probe").is_symlink()
    assert attach.read_marker(str(tmp_path), "probe")["netns"] == "/var/run/netns/probe"


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_store_lock_waits_in_the_kernel_queue_not_by_polling(tmp_path, monkeypatch):
    """Item 11: a Python waiter blocks in flock like Go's waiters (LOCK_NB polling loses to them)."""
    import fcntl
    import subprocess
    import sys

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import LOCK_FILE, Store

    store = Store(str(tmp_path), "net", lock_timeout=20)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "net" / LOCK_FILE), "1"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        calls = []
        real = fcntl.flock

        def spy(fd, op):
            calls.append(op)
            return real(fd, op)

        monkeypatch.setattr(fcntl, "flock", spy)
        with store.locked():
            pass
        waits = [op for op in calls if op != fcntl.LOCK_UN]
        # one try that finds the lock held, then a blocking wait
        assert waits == [fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_EX], "waited by polling: %d flock calls" % len(waits)
    finally:
        holder.kill()
        holder.wait()
        store.close()


def test_a_free_store_lock_is_taken_at_once_without_a_timer(tmp_path, monkeypatch):
    """An exec'd plugin's uncontended lock: one LOCK_NB flock, no SIGALRM timer armed."""
    import fcntl
    import signal

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import Store

    store = Store(str(tmp_path), "net", lock_timeout=20)
    calls, timers = [], []
    real = fcntl.flock

    def spy(fd, op):
        calls.append(op)
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", spy)
    monkeypatch.setattr(signal, "setitimer", lambda *a: timers.append(a))
    try:
        with store.locked():
            pass
        assert [op for op in calls if op != fcntl.LOCK_UN] == [fcntl.LOCK_EX | fcntl.LOCK_NB]
        assert timers == []
    finally:
        store.close()


def test_store_lock_wait_is_still_bounded(tmp_path):
    import subprocess
    import sys

    import pytest

    from ansible_collections.nodenet.cni.plugins.module_utils.cni.ipam.store import LOCK_FILE, Store
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

    store = Store(str(tmp_path), "net", lock_timeout=0.5)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "net" / LOCK_FILE), "30"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(CNIError) as e:
            with store.locked():
                pass
        assert e.value.code == 11
    finally:
        holder.kill()
        holder.wait()
        store.close()


def test_ifname_length_is_counted_in_bytes_by_skel():
    """Item 11: 8 x "é" is 8 characters but 16 bytes: more than IFNAMSIZ allows."""
    import pytest

    from ansible_collections.nodenet.cni.plugins.module_utils.cni import skel
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/nonexistent", "CNI_IFNAME": "é" * 8, "CNI_PATH": "/x"}
    with pytest.raises(CNIError) as e:
        skel._validate_env("ADD", env)
    assert e.value.code == 4 and "bytes" in e.value.msg


def _lab_node(state_dir, state="absent"):
    from ansible_collections.nodenet.cni.plugins.modules import lab_node

    params = {"name": "nnt-node1", "state": state, "state_dir": str(state_dir), "private_paths": ["/etc/cni"], "directories": [],
              "underlay_netns": "", "underlay_bridge": "", "underlay_port": "", "underlay_cidr": "10.0.0.0/24", "index": 1,
              "interface": "eth0", "sysctls": {}}
    return lab_node, lab_node.LabNode(host=None, params=params)


def test_lab_removes_only_a_state_dir_it_made(tmp_path):
    """Item 10: an allow-list: state_dir: /usr (anything not the lab's) is never rmtree'd."""
    import pytest

    foreign = tmp_path / "usr"
    (foreign / "bin").mkdir(parents=True)
    (foreign / "bin" / "precious").write_text("keep")
    lab_node, node = _lab_node(foreign)
    with pytest.raises(lab_node.LabError, match="did not make it"):
        node.remove_state_dir()
    assert (foreign / "bin" / "precious").read_text() == "keep"

    ours = tmp_path / "nnt-node1"
    ours.mkdir()
    lab_node, node = _lab_node(ours)
    node.write_marker()
    (ours / "root" / "etc" / "cni").mkdir(parents=True)
    (ours / "extra").write_text("made inside the node")
    node.remove_state_dir()
    assert not ours.exists()


def test_lab_marks_the_state_dir_it_creates(tmp_path):
    lab_node, node = _lab_node(tmp_path / "nnt-node1", state="present")
    steps = node.plan_present({"missing_dirs": [node.state_dir], "mountpoints": {}, "state_dir_mount": {"shared": False}, "marked": False,
                               "underlay": True, "underlay_lo": {"flags": ["UP"]}, "bridge": {"flags": ["UP"]}, "netns": True,
                               "lo": {"flags": ["UP"]}, "port": None, "interface": None, "addresses": [], "sysctls": {},
                               "view": None, "sources": {}, "mnt": False, "uts": False, "netns_file": True})
    assert any(d.startswith("mark %s" % node.state_dir) for d, _step in steps)
