# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_boot's back-end on a temp tree: observe, compare, act (no root needed:
the files' owner is the user running the test)."""

import json
import os
import shlex

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import boot_files as bf

UID, GID = os.geteuid(), os.getegid()
RESTORE = {
    "bridge": {"name": "cni0", "addresses": ["10.244.1.1/24", "fd00:10:244:1::1/64"], "mtu": None},
    "routes": {"protocol": 77, "table": 254, "routes": [{"subnet": "10.244.2.0/24", "via": "172.31.250.2"}]},
}
COMMAND = ["/usr/bin/python3", "-I", "-c", "import sys; print(sys.argv[1])", "/opt/cni/bin/.nodenet-cni", "/etc/nodenet/boot.json"]


def spec(tmp_path, **kw):
    params = dict(
        sysctl_file=str(tmp_path / "sysctl.d" / "90-nodenet-cni.conf"),
        sysctls={"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1},
        restore_file=str(tmp_path / "nodenet" / "boot.json"),
        restore=RESTORE,
        systemd_dir=str(tmp_path / "systemd"),
        command=COMMAND,
    )
    params.update(kw)
    return bf.BootSpec.from_params(params)


def converge(s):
    changes = bf.plan(s, UID, GID)
    bf.apply(changes, UID, GID)
    return changes


def test_first_run_writes_all_four_and_a_second_changes_nothing(tmp_path):
    s = spec(tmp_path)
    first = converge(s)
    assert [(os.path.relpath(c.desired.path, tmp_path), c.action) for c in first] == [
        ("sysctl.d/90-nodenet-cni.conf", "created"),
        ("nodenet/boot.json", "created"),
        ("systemd/nodenet-cni-boot.service", "created"),
        ("systemd/multi-user.target.wants", "created"),
        ("systemd/multi-user.target.wants/nodenet-cni-boot.service", "created"),
    ]
    assert bf.plan(s, UID, GID) == []
    assert os.readlink(s.link_path()) == s.unit_path
    assert json.loads(open(s.restore_file).read()) == RESTORE
    drop_in = open(s.sysctl_file).read().splitlines()
    assert drop_in[1:] == ["net.ipv4.ip_forward = 1", "net.ipv6.conf.all.forwarding = 1"]
    assert oct(os.stat(s.unit_path).st_mode & 0o777) == "0o644"


def test_unit_execstart_splits_back_into_the_command_and_orders_before_the_runtimes(tmp_path):
    s = spec(tmp_path)
    converge(s)
    unit = open(s.unit_path).read().splitlines()
    execstart = [line.split("=", 1)[1] for line in unit if line.startswith("ExecStart=")]
    assert [shlex.split(e) for e in execstart] == [COMMAND]
    assert "Before=containerd.service crio.service kubelet.service" in unit
    assert "WantedBy=multi-user.target" in unit


def test_systemd_specifiers_in_the_command_are_escaped():
    unit = bf.render_unit(["/bin/echo", "100%", "$HOME"], "d", [], "").decode()
    assert "ExecStart=/bin/echo 100%% '$$HOME'" in unit and "[Install]" not in unit


def test_only_what_differs_is_rewritten_and_named(tmp_path):
    s = spec(tmp_path)
    converge(s)
    os.chmod(s.sysctl_file, 0o600)
    other = bf.BootSpec.from_params(dict(vars(s), restore={"bridge": RESTORE["bridge"]}))
    changes = bf.plan(other, UID, GID)
    assert [(c.desired.path, c.reasons) for c in changes] == [(s.sysctl_file, ["mode 0600"]), (s.restore_file, ["content"])]
    diff = bf.diffs(changes)[1]
    assert diff["before_header"] == s.restore_file and "10.244.2.0/24" in diff["before"] and "10.244.2.0/24" not in diff["after"]
    bf.apply(changes, UID, GID)
    assert bf.plan(other, UID, GID) == []


def test_a_wrong_link_is_repointed_and_a_file_in_its_place_replaced(tmp_path):
    s = spec(tmp_path)
    converge(s)
    os.unlink(s.link_path())
    os.symlink("/elsewhere", s.link_path())
    assert [c.reasons for c in bf.plan(s, UID, GID)] == [["target"]]
    converge(s)
    os.unlink(s.link_path())
    open(s.link_path(), "w").close()
    assert [c.reasons for c in bf.plan(s, UID, GID)] == [["a file, not a link"]]
    converge(s)
    assert os.readlink(s.link_path()) == s.unit_path


def test_absent_removes_everything_and_is_idempotent(tmp_path):
    s = spec(tmp_path)
    converge(s)
    gone = bf.BootSpec.from_params(dict(vars(s), state="absent"))
    assert sorted(c.action for c in converge(gone)) == ["removed"] * 4
    assert not os.path.lexists(s.link_path()) and not os.path.exists(s.unit_path)
    assert bf.plan(gone, UID, GID) == []


def test_empty_sysctls_remove_the_drop_in(tmp_path):
    converge(spec(tmp_path))
    s = spec(tmp_path, sysctls={})
    assert [(c.desired.path, c.action) for c in converge(s)] == [(s.sysctl_file, "removed")]


@pytest.mark.parametrize(
    "override, option",
    [
        ({"sysctls": {"net.ipv4.ip_forward\n": 1}}, "sysctls"),
        ({"sysctls": {"net.ipv4.ip_forward": "1\nx = 2"}}, "sysctls.net.ipv4.ip_forward"),
        ({"restore": {"bridges": {}}}, "restore"),
        ({"restore": {"bridge": {"addresses": ["10.0.0.1/24"]}}}, "restore.bridge"),
        ({"restore": {"bridge": {"name": "cni0", "addresses": ["10.0.0.1/33"]}}}, "restore.bridge.addresses"),
        ({"restore": {"bridge": {"name": "cni0", "mtu": 20}}}, "restore.bridge.mtu"),
        ({"restore": {"routes": {"routes": [{"subnet": "10.0.0.1/24", "via": "1.2.3.4"}]}}}, "restore.routes.routes"),
        ({"restore": {"routes": {"routes": [{"subnet": "10.0.0.0/24", "via": "fd00::1"}]}}}, "restore.routes.routes"),
        ({"restore": {"routes": {"protocol": "77"}}}, "restore.routes.protocol"),
        ({"command": ["python3", "x"]}, "command"),
        ({"command": []}, "command"),
        ({"before": ["kubelet service"]}, "before"),
        ({"unit": "../evil.service"}, "unit"),
        ({"wanted_by": "multi user"}, "wanted_by"),
        ({"sysctl_file": "relative.conf"}, "sysctl_file"),
    ],
)
def test_bad_input_names_the_option_and_writes_nothing(tmp_path, override, option):
    with pytest.raises(bf.BootFilesError) as e:
        s = spec(tmp_path, **override)
        bf.plan(s, UID, GID)
    assert e.value.option == option, e.value.msg
    assert os.listdir(tmp_path) == []
