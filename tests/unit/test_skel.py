# SPDX-License-Identifier: GPL-3.0-or-later
"""skel.run: env validation, version gating, VERSION, about text — the pure call, no exec."""

import json
import os

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni import skel
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import load_cni_args, parse_cni_args
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

BASE_ENV = {"CNI_CONTAINERID": "abc", "CNI_NETNS": "/var/run/netns/none", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
CONF = {"cniVersion": "1.0.0", "name": "net", "type": "loopback"}


def run(env, conf=None, stdin=None):
    data = stdin if stdin is not None else json.dumps(CONF if conf is None else conf).encode()
    return skel.run("loopback", env, data)


def test_no_command_prints_about_on_stderr_and_exits_zero():
    code, out, err = run({})
    assert code == 0 and out == ""
    assert err.startswith("CNI loopback plugin (nodenet.cni) v")
    assert "CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0" in err


def test_version_echoes_a_supported_request_and_lists_all():
    code, out, _err = run({"CNI_COMMAND": "VERSION"}, stdin=b'{"cniVersion":"0.3.1"}')
    assert code == 0 and out.endswith("\n")
    assert json.loads(out) == {"cniVersion": "0.3.1", "supportedVersions": ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}
    code, out, _err = run({"CNI_COMMAND": "VERSION"}, stdin=b"")
    assert json.loads(out)["cniVersion"] == "1.1.0"


@pytest.mark.parametrize(
    "env, conf, stdin, code, words",
    [
        (dict(BASE_ENV, CNI_COMMAND="FROB"), CONF, None, 4, "unknown CNI_COMMAND: FROB"),
        ({"CNI_COMMAND": "ADD"}, CONF, None, 4, "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH"),
        (dict(BASE_ENV, CNI_COMMAND="ADD", CNI_PATH=""), CONF, None, 4, "CNI_PATH"),
        (dict(BASE_ENV, CNI_COMMAND="ADD", CNI_CONTAINERID="a/b"), CONF, None, 4, "CNI_CONTAINERID"),
        (dict(BASE_ENV, CNI_COMMAND="ADD", CNI_CONTAINERID="-a"), CONF, None, 4, "CNI_CONTAINERID"),
        (dict(BASE_ENV, CNI_COMMAND="ADD", CNI_IFNAME="eth0:1"), CONF, None, 4, "CNI_IFNAME"),
        (dict(BASE_ENV, CNI_COMMAND="ADD", CNI_IFNAME="a" * 16), CONF, None, 4, "CNI_IFNAME"),
        (dict(BASE_ENV, CNI_COMMAND="ADD", CNI_IFNAME=".."), CONF, None, 4, "CNI_IFNAME"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), None, b"{not json", 6, "network config"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), None, b"[]", 6, "JSON object"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), {"cniVersion": "1.0.0", "type": "loopback"}, None, 7, "missing network name"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), dict(CONF, name="../x"), None, 7, "network name"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), dict(CONF, name=5), None, 7, "'name'"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), dict(CONF, cniVersion="0.9.9"), None, 1, "incompatible CNI versions"),
        (dict(BASE_ENV, CNI_COMMAND="CHECK"), dict(CONF, cniVersion="0.3.1"), None, 1, "CHECK"),
        (dict(BASE_ENV, CNI_COMMAND="GC"), dict(CONF, cniVersion="1.0.0"), None, 1, "GC"),
        (dict(BASE_ENV, CNI_COMMAND="STATUS"), dict(CONF, cniVersion="0.4.0"), None, 1, "STATUS"),
        (dict(BASE_ENV, CNI_COMMAND="DEL", CNI_NETNS="/proc/self/ns/net"), CONF, None, 4, "CNI_NETNS"),
        # Go's regexp `$` is the end of the text; Python's also matches before a final newline
        (dict(BASE_ENV, CNI_COMMAND="ADD", CNI_CONTAINERID="c2\n"), CONF, None, 4, "CNI_CONTAINERID"),
        (dict(BASE_ENV, CNI_COMMAND="DEL", CNI_CONTAINERID="c2\n"), CONF, None, 4, "CNI_CONTAINERID"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), dict(CONF, name="net\n"), None, 7, "invalid characters found in network name"),
        (dict(BASE_ENV, CNI_COMMAND="ADD"), {"cniVersion": "1.0.0", "Name": "net\n"}, None, 7, "network name"),
    ],
)
def test_bad_input_is_a_spec_error(env, conf, stdin, code, words):
    rc, out, _err = run(env, conf, stdin)
    assert rc == 1
    err = json.loads(out)
    assert err["code"] == code
    assert words in err["msg"] + " " + err.get("details", "")


def test_gc_and_status_without_implementation_succeed_on_110():
    for command in ("GC", "STATUS"):
        rc, out, _err = run(dict(BASE_ENV, CNI_COMMAND=command), dict(CONF, cniVersion="1.1.0"))
        assert (rc, out) == (0, "")


def test_name_and_version_keys_fold_like_gos_skel():
    env = dict(BASE_ENV, CNI_COMMAND="DEL", CNI_NETNS="")
    rc, out, _err = run(env, {"CNIVersion": "0.3.1", "NAME": "net", "type": "loopback"})
    assert (rc, out) == (0, "")
    rc, out, _err = run(dict(BASE_ENV, CNI_COMMAND="CHECK"), {"CNIVersion": "0.3.0", "Name": "net"})
    assert rc == 1 and json.loads(out)["code"] == 1, "CHECK needs 0.4.0: the folded cniVersion was read"


def test_plugins_that_never_enter_the_netns_accept_the_callers_own(tmp_path):
    conf = {"cniVersion": "1.0.0", "name": "net", "type": "host-local",
            "ipam": {"type": "host-local", "dataDir": str(tmp_path), "ranges": [[{"subnet": "10.9.0.0/24"}]]}}
    env = dict(BASE_ENV, CNI_NETNS="/proc/self/ns/net")
    for command in ("ADD", "DEL"):
        rc, out, _err = skel.run("host-local", dict(env, CNI_COMMAND=command), json.dumps(conf).encode())
        assert rc == 0, out
    assert not [p for p in (tmp_path / "net").iterdir() if p.name.startswith("10.")]


def test_del_does_not_need_netns():
    env = dict(BASE_ENV, CNI_COMMAND="DEL", CNI_NETNS="")
    assert run(env)[0] == 0


def test_cni_args_parsing_matches_go():
    assert parse_cni_args("IP=10.0.0.2;MAC=aa") == [("IP", "10.0.0.2"), ("MAC", "aa")]
    with pytest.raises(CNIError):
        parse_cni_args("IP")
    with pytest.raises(CNIError) as e:
        load_cni_args("ip=10.0.0.2", ["IP"])
    assert e.value.code == 4 and "unknown args" in e.value.msg
    assert load_cni_args("IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.0.0.2", ["IP"]) == {"IP": "10.0.0.2"}


def test_one_call_and_its_in_process_delegates_parse_the_stdin_once(monkeypatch):
    """skel.run opens a memo for the call: a delegate run in-process on the same bytes gets its
    caller's dict and NetConf; the next call parses afresh; a parse that fails fails every time."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.netconf import call_memo, parse_netconf
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import Result

    seen = []

    def add(cmd):
        seen.append((cmd.netconf, parse_netconf(cmd.netconf), parse_netconf(cmd.netconf, lenient=True)))
        if len(seen) % 2 == 1:  # the caller: run a delegate with the identical bytes, as invoke.delegate does
            code, out, err = skel.run("fake", dict(cmd.env, CNI_COMMAND="ADD"), cmd.stdin)
            assert code == 0, out + err
        return Result(cni_version="1.0.0")

    plugin = skel.Plugin(name="fake", add=add, delete=add, check=add, enters_netns=False)
    monkeypatch.setattr(skel, "load_plugin", lambda name: plugin)
    env = dict(BASE_ENV, CNI_COMMAND="ADD")
    for _attempt in range(2):
        code, out, err = skel.run("fake", env, json.dumps(CONF).encode())
        assert code == 0, out + err
        assert call_memo() is None  # nothing kept between calls
    (raw1, conf1, lenient1), (raw2, conf2, lenient2), (raw3, conf3, _l3), _fourth = seen
    assert raw1 is raw2 and conf1 is conf2 and lenient1 is lenient2  # the delegate: its caller's
    assert conf1 is not lenient1  # a strict and a lenient parse are two parses
    assert raw3 is not raw1 and conf3 is not conf1 and raw3 == raw1  # the next call: afresh
    assert (conf3.name, conf3.cni_version, conf3.type) == (conf1.name, conf1.cni_version, conf1.type)
    assert conf1.name == "net" and conf1.cni_version == "1.0.0"
    for _attempt in range(2):  # a netconf that does not parse: the error each time
        code, out, _err = skel.run("fake", env, json.dumps(dict(CONF, capabilities=5)).encode())
        assert code == 1 and json.loads(out)["code"] == 7 and "capabilities" in json.loads(out)["msg"]


def test_a_delegates_shim_header_is_read_again_only_when_the_file_changed(tmp_path, monkeypatch):
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.agent import shim

    monkeypatch.setattr(skel, "_HEADERS", {})
    path = tmp_path / "host-local"
    path.write_text(shim.render_shim("host-local", "/usr/bin/python3", "/opt/rt/a", 4242, "/run/nodenet-cni"))
    reads = []
    real = shim.read_header
    monkeypatch.setattr(shim, "read_header", lambda p: reads.append(p) or real(p))
    first = skel._shim_header(str(path))
    assert first == real(str(path)) and first["canonical"] == "host-local" and first["rdir"] == "/opt/rt/a"
    assert skel._shim_header(str(path)) == first and len(reads) == 1  # unchanged file: not read again
    replaced = tmp_path / "new"
    replaced.write_text(shim.render_shim("host-local", "/usr/bin/python3", "/opt/rt/b", 4242, "/run/nodenet-cni"))
    os.replace(replaced, path)  # an upgrade installs a new shim (a new inode)
    assert skel._shim_header(str(path))["rdir"] == "/opt/rt/b" and len(reads) == 2
    path.unlink()
    assert skel._shim_header(str(path)) is None
