# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_netconf through `ansible`: writes only into per-test temp dirs."""

import json
import os
import stat

import pytest
from ansiblerun import run_module

M = "nodenet.cni.cni_netconf"


def seed_plugins(data_dir, default_gw=True):
    return [{
        "type": "nodenet-bridge", "bridge": "cni0", "isDefaultGateway": default_gw, "forceAddress": False,
        "ipMasq": True, "hairpinMode": True,
        "ipam": {"type": "nodenet-host-local",
                 "ranges": [[{"subnet": "10.13.0.0/22", "rangeStart": "10.13.3.8", "rangeEnd": "10.13.3.253", "gateway": "10.13.3.254"}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir}}]


@pytest.fixture
def dirs(tmp_path, cni_bin):
    conf = tmp_path / "net.d"
    conf.mkdir()
    return {"conf_dir": str(conf), "bin_dir": [cni_bin], "data": str(tmp_path / "data" / "cni")}


def test_writes_lints_creates_datadir_idempotently(dirs):
    args = {"name": "mynet", "cni_version": "0.3.1", "conf_dir": dirs["conf_dir"], "bin_dir": dirs["bin_dir"], "plugins": seed_plugins(dirs["data"])}
    res = run_module(M, args, check=True, diff=True)
    assert res["changed"] and not os.listdir(dirs["conf_dir"]) and not os.path.exists(dirs["data"])
    assert '"name": "mynet"' in res["_stdout"]
    res = run_module(M, args, diff=True)
    assert res["changed"] and not res["failed"]
    path = os.path.join(dirs["conf_dir"], "10-mynet.conflist")
    assert res["path"] == path
    with open(path) as f:
        written = json.load(f)
    assert written["cniVersion"] == "0.3.1" and written["name"] == "mynet" and written["plugins"][0]["type"] == "nodenet-bridge"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(dirs["data"]).st_mode) == 0o700
    assert any(f["rule"] == "duplicate-default-route" and f["level"] == "warning" for f in res["findings"])
    assert not run_module(M, args)["changed"]
    # formatting-only change is not a change
    with open(path, "w") as f:
        json.dump(written, f, separators=(",", ":"))
    assert not run_module(M, args)["changed"]
    args["plugins"][0]["hairpinMode"] = False
    assert run_module(M, args)["changed"]
    assert run_module(M, dict(args, state="absent"))["changed"] and not os.path.exists(path)
    assert not run_module(M, dict(args, state="absent"))["changed"]


def test_unsupported_version_and_missing_plugin_fail_before_writing(dirs, go_bin):
    # Go's plugins first; our bin dir after them only lends its runtime's netaddr to the module
    args = {"name": "n1", "cni_version": "1.1.0", "conf_dir": dirs["conf_dir"], "bin_dir": [go_bin] + dirs["bin_dir"],
            "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.1.0.0/24", "dataDir": dirs["data"]}}]}
    res = run_module(M, args)
    assert res["failed"] and "does not support cniVersion 1.1.0" in res["msg"]
    assert not os.listdir(dirs["conf_dir"]) and not os.path.exists(dirs["data"])
    args["plugins"][0]["type"] = "nodenet-nothing"
    args["cni_version"] = "1.0.0"
    res = run_module(M, args)
    assert res["failed"] and "'nodenet-nothing'" in res["msg"] and "is not in" in res["msg"]
    res = run_module(M, dict(args, lint="warn"))
    assert res["changed"] and not res["failed"]
    assert os.path.exists(os.path.join(dirs["conf_dir"], "10-n1.conflist"))


def test_exclusive_renames_configs_that_would_win(dirs):
    first = os.path.join(dirs["conf_dir"], "05-old.conf")
    later = os.path.join(dirs["conf_dir"], "99-later.conflist")
    for p in (first, later):
        with open(p, "w") as f:
            json.dump({"cniVersion": "0.3.1", "name": "old", "type": "bridge"}, f)
    args = {"name": "mynet", "cni_version": "1.0.0", "conf_dir": dirs["conf_dir"], "bin_dir": dirs["bin_dir"],
            "plugins": seed_plugins(dirs["data"], default_gw=False), "exclusive": True}
    res = run_module(M, args, check=True, diff=True)
    assert res["changed"] and os.path.exists(first)
    assert res["disabled"] == ["%s -> %s.nodenet-disabled" % (first, first)]
    assert "05-old.conf" in res["_stdout"]
    res = run_module(M, args)
    assert not os.path.exists(first) and os.path.exists(first + ".nodenet-disabled") and os.path.exists(later)
    assert not run_module(M, args)["changed"]


@pytest.mark.parametrize(
    "update, words",
    [
        ({"name": "../evil"}, "name"),
        ({"cni_version": "2.0.0"}, "cni_version"),
        ({"priority": "1/2"}, "priority"),
        ({"plugins": None}, "plugins"),
        ({"plugins": [{"bridge": "cni0"}]}, "plugins[0]"),
        ({"plugins": [{"type": "nodenet-bridge", "hairpinMode": "yes"}]}, "hairpinMode"),
        ({"plugins": [{"type": "nodenet-bridge", "ipam": {"type": "nodenet-host-local", "subnet": "10.0.0.0/33"}}]}, "subnet"),
        ({"plugins": [{"type": "nodenet-bridge", "ipam": {"type": "nodenet-host-local",
                       "ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/25"}]]}}]}, "overlap"),
        ({"format": "conf", "plugins": [{"type": "nodenet-bridge"}, {"type": "nodenet-portmap"}]}, "exactly one plugin"),
        ({"lint": "maybe"}, "lint"),
    ],
)
def test_bad_options_fail_naming_them(dirs, update, words):
    args = {"name": "bad", "cni_version": "1.0.0", "conf_dir": dirs["conf_dir"], "bin_dir": dirs["bin_dir"], "plugins": [{"type": "nodenet-loopback"}]}
    args.update(update)
    args = {k: v for k, v in args.items() if v is not None}
    res = run_module(M, args)
    assert res["failed"] and words in res["msg"], res["msg"]
    assert not os.listdir(dirs["conf_dir"])
