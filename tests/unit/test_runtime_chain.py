# SPDX-License-Identifier: GPL-3.0-or-later
"""runtime.chain against tiny fake plugins that log what they get (no root, no network).

Each fake is a small script in a tmp bin dir. It appends one JSON line per
call to a log (plugin, CNI_COMMAND, stdin, CNI_* env) and behaves as its
stdin's "fake" key says: fail on some verbs, sleep, return a given IP.
"""

import json
import os
import stat
import sys

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import (
    ChainError,
    Runtime,
    RuntimeConf,
    plugin_stdin,
    plugin_versions,
    probe_dir,
)
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.cache import (
    CacheEntry,
    list_attachments,
    read_entry,
    write_entry,
)
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.confdir import parse_conf_list

ALL_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

FAKE = r'''#!{python}
import json, os, sys, time
NAME = {name!r}
LOG = {log!r}
VERSION_REPLY = {version_reply!r}
data = sys.stdin.read()
cmd = os.environ.get("CNI_COMMAND", "")
conf = json.loads(data) if data.strip() else {{}}
with open(LOG, "a") as f:
    env = {{k: v for k, v in os.environ.items() if k.startswith(("CNI_", "FAKE_"))}}
    f.write(json.dumps({{"plugin": NAME, "command": cmd, "stdin": conf, "env": env}}) + "\n")
if cmd == "VERSION":
    if VERSION_REPLY == "unknown":
        print(json.dumps({{"code": 4, "msg": "unknown CNI_COMMAND: VERSION"}}))
        sys.exit(1)
    sys.stdout.write(VERSION_REPLY if isinstance(VERSION_REPLY, str) else json.dumps(VERSION_REPLY))
    sys.exit(0)
fake = conf.get("fake") or {{}}
if fake.get("sleep"):
    time.sleep(fake["sleep"])
if cmd in fake.get("fail", []):
    sys.stderr.write("%s: about to fail\n" % NAME)
    if fake.get("silent"):
        sys.exit(2)
    print(json.dumps({{"code": fake.get("code", 11), "msg": "%s refuses %s" % (NAME, cmd), "details": "asked to"}}))
    sys.exit(1)
if cmd == "ADD":
    if "stdout" in fake:
        sys.stdout.write(fake["stdout"])
        sys.exit(0)
    prev = conf.get("prevResult") or {{"cniVersion": conf.get("cniVersion"), "ips": []}}
    res = dict(prev)
    res["ips"] = list(prev.get("ips", [])) + [{{"address": fake.get("ip", "10.0.0.%d/24" % (len(prev.get("ips", [])) + 2))}}]
    if fake.get("noVersion"):
        res.pop("cniVersion", None)
    print(json.dumps(res))
'''


class Fakes:
    def __init__(self, tmp_path):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        self.cache = str(tmp_path / "cache")

    def plugin(self, name, version_reply=None):
        reply = version_reply if version_reply is not None else {"cniVersion": "1.1.0", "supportedVersions": ALL_VERSIONS}
        path = self.bin / name
        path.write_text(FAKE.format(python=sys.executable, name=name, log=str(self.log), version_reply=reply))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)

    def calls(self, command=None):
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [c for c in calls if command is None or c["command"] == command]

    def runtime(self, **kw):
        return Runtime([str(self.bin)], **kw)

    def rt(self, container_id="ctr1", **kw):
        kw.setdefault("netns", "/var/run/netns/fake")
        kw.setdefault("cache_dir", self.cache)
        return RuntimeConf(container_id, **kw)


@pytest.fixture
def fakes(tmp_path):
    f = Fakes(tmp_path)
    for name in ("fake-a", "fake-b", "fake-c"):
        f.plugin(name)
    return f


def net_list(plugins, version="1.0.0", name="fakenet", **extra):
    obj = dict({"cniVersion": version, "name": name, "plugins": plugins}, **extra)
    return parse_conf_list(json.dumps(obj).encode(), "/etc/cni/net.d/10-fakenet.conflist")


ABC = [{"type": "fake-a"}, {"type": "fake-b"}, {"type": "fake-c"}]


# ---------------------------------------------------------------------------
# ADD


def test_add_runs_in_order_and_each_plugin_gets_the_previous_result(fakes):
    out = fakes.runtime().add_list(net_list(ABC), fakes.rt())
    calls = fakes.calls("ADD")
    assert [c["plugin"] for c in calls] == ["fake-a", "fake-b", "fake-c"]
    assert "prevResult" not in calls[0]["stdin"]
    assert calls[1]["stdin"]["prevResult"]["ips"] == [{"address": "10.0.0.2/24"}]
    assert calls[2]["stdin"]["prevResult"]["ips"] == [{"address": "10.0.0.2/24"}, {"address": "10.0.0.3/24"}]
    assert out.result["ips"] == [{"address": "10.0.0.%d/24" % i} for i in (2, 3, 4)]


def test_add_injects_list_name_and_version_over_the_plugins_own(fakes):
    plugins = [{"type": "fake-a", "name": "ignored", "cniVersion": "0.1.0", "bridge": "cni0"}]
    fakes.runtime().add_list(net_list(plugins, version="0.4.0"), fakes.rt())
    stdin = fakes.calls("ADD")[0]["stdin"]
    assert (stdin["name"], stdin["cniVersion"], stdin["bridge"], stdin["type"]) == ("fakenet", "0.4.0", "cni0", "fake-a")


def test_runtime_config_only_for_capabilities_enabled_and_supplied(fakes):
    plugins = [
        {"type": "fake-a", "capabilities": {"portMappings": True, "mac": False, "ips": True}},
        {"type": "fake-b"},
        {"type": "fake-c", "capabilities": {"bandwidth": True}},
    ]
    caps = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}], "mac": "aa:bb:cc:dd:ee:ff", "bandwidth": {"ingressRate": 1}}
    fakes.runtime().add_list(net_list(plugins), fakes.rt(capability_args=caps))
    a, b, c = (call["stdin"] for call in fakes.calls("ADD"))
    assert a["runtimeConfig"] == {"portMappings": caps["portMappings"]}  # mac disabled, ips not supplied
    assert a["capabilities"] == plugins[0]["capabilities"]  # libcni only adds keys
    assert "runtimeConfig" not in b
    assert c["runtimeConfig"] == {"bandwidth": {"ingressRate": 1}}


def test_env_is_callers_env_plus_the_six_cni_vars(fakes):
    rt = fakes.rt(ifname="net1", args=[("IgnoreUnknown", "1"), ("K8S_POD_NAME", "p")])
    base = {"PATH": os.environ["PATH"], "FAKE_MARK": "kept", "CNI_COMMAND": "overridden"}
    fakes.runtime(env=base).add_list(net_list(ABC[:1]), rt)
    env = fakes.calls("ADD")[0]["env"]
    assert env == {
        "FAKE_MARK": "kept",
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "ctr1",
        "CNI_NETNS": "/var/run/netns/fake",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p",
        "CNI_IFNAME": "net1",
        "CNI_PATH": str(fakes.bin),
    }


def test_stdin_is_compact_json_with_sorted_keys_like_go(fakes):
    net = net_list([{"type": "fake-a", "zeta": 1, "alpha": 2}])
    data = plugin_stdin(net, net.plugins[0], {"cniVersion": "1.0.0"}, fakes.rt())
    assert data == b'{"alpha":2,"cniVersion":"1.0.0","name":"fakenet","prevResult":{"cniVersion":"1.0.0"},"type":"fake-a","zeta":1}'


def test_add_caches_the_final_result_in_cni_cache_v1(fakes):
    net = net_list(ABC[:2])
    rt = fakes.rt(args=[("A", "1")], capability_args={"mac": "x"})
    out = fakes.runtime().add_list(net, rt)
    assert out.cache_file == os.path.join(fakes.cache, "results", "fakenet-ctr1-eth0")
    raw = json.loads(open(out.cache_file).read())
    assert raw["kind"] == "cniCacheV1" and raw["containerId"] == "ctr1" and raw["ifName"] == "eth0"
    assert raw["networkName"] == "fakenet" and raw["netns"] == "/var/run/netns/fake"
    assert raw["cniArgs"] == [["A", "1"]] and raw["capabilityArgs"] == {"mac": "x"}
    assert raw["result"] == out.result
    import base64

    assert base64.b64decode(raw["config"]) == net.bytes


def test_trace_records_every_exec_completely(fakes):
    out = fakes.runtime().add_list(net_list(ABC[:2]), fakes.rt())
    assert [os.path.basename(r.path) for r in out.trace] == ["fake-a", "fake-b"]
    for rec in out.trace:
        assert rec.command == "ADD" and rec.exit_code == 0 and rec.error == ""
        assert rec.argv == [rec.path]
        assert set(rec.env) == {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_ARGS", "CNI_IFNAME", "CNI_PATH"}
        assert json.loads(rec.stdin)["name"] == "fakenet"
        assert json.loads(rec.stdout)["ips"]
        assert rec.duration_ms > 0
        d = rec.as_dict()
        assert set(d) >= {"path", "env", "stdin", "stdout", "stderr", "exit_code", "duration_ms", "argv", "error"}
    json.dumps(out.as_dict())


def test_failing_plugin_aborts_add_with_libcni_message_and_shows_in_trace(fakes):
    plugins = [{"type": "fake-a"}, {"type": "fake-b", "fake": {"fail": ["ADD"], "code": 11}}, {"type": "fake-c"}]
    with pytest.raises(ChainError) as e:
        fakes.runtime().add_list(net_list(plugins), fakes.rt())
    err = e.value
    assert str(err) == 'plugin type="fake-b" name="fakenet" failed (add): fake-b refuses ADD; asked to'
    assert (err.plugin_type, err.network, err.verb, err.code) == ("fake-b", "fakenet", "ADD", 11)
    assert [os.path.basename(r.path) for r in err.trace] == ["fake-a", "fake-b"]
    failed = err.trace[-1]
    assert failed.exit_code == 1 and "refuses ADD" in failed.stdout and "about to fail" in failed.stderr
    assert failed.error == "fake-b refuses ADD; asked to"
    assert [c["plugin"] for c in fakes.calls()] == ["fake-a", "fake-b"]  # fake-c never ran
    assert read_entry(fakes.cache, "fakenet", "ctr1", "eth0") is None  # nothing cached
    json.dumps(err.as_dict())


def test_failure_with_empty_stdout_quotes_stderr_like_libcni(fakes):
    plugins = [{"type": "fake-a", "fake": {"fail": ["ADD"], "silent": True}}]
    with pytest.raises(ChainError) as e:
        fakes.runtime().add_list(net_list(plugins), fakes.rt())
    assert str(e.value).endswith('failed (add): netplugin failed: "fake-a: about to fail\\n": exit status 2')


def test_missing_plugin_is_a_chain_error_for_that_type(fakes):
    with pytest.raises(ChainError) as e:
        fakes.runtime().add_list(net_list([{"type": "fake-a"}, {"type": "nope"}]), fakes.rt())
    # (invoke.find_plugin quotes with Python's repr; Go prints "nope")
    assert str(e.value).startswith('plugin type="nope" name="fakenet" failed (add): failed to find plugin')
    assert "nope" in str(e.value) and str(fakes.bin) in str(e.value)
    assert len(e.value.trace) == 1


@pytest.mark.parametrize(
    "rt_kw, code, words",
    [
        ({"container_id": ""}, 3, "missing containerID"),
        ({"container_id": "bad/id"}, 4, "invalid characters in containerID"),
        ({"ifname": ""}, 4, "interface name is empty"),
        ({"ifname": "a-very-long-ifname"}, 4, "interface name is too long"),
        ({"ifname": "eth:0"}, 4, "contains / or : or whitespace"),
        ({"ifname": ".."}, 4, "interface name is . or .."),
    ],
)
def test_add_validates_the_attachment_before_any_exec(fakes, rt_kw, code, words):
    rt = fakes.rt(**{k: v for k, v in rt_kw.items() if k != "container_id"}, container_id=rt_kw.get("container_id", "ctr1"))
    with pytest.raises(ChainError) as e:
        fakes.runtime().add_list(net_list(ABC), rt)
    assert e.value.code == code and words in str(e.value)
    assert fakes.calls() == []


def test_add_validates_the_network_name(fakes):
    with pytest.raises(ChainError) as e:
        fakes.runtime().add_list(net_list(ABC, name="../evil"), fakes.rt())
    assert e.value.code == 7 and "invalid characters found in network name" in str(e.value)


def test_result_without_cni_version_gets_the_list_version(fakes):
    out = fakes.runtime().add_list(net_list([{"type": "fake-a", "fake": {"noVersion": True}}], version="0.4.0"), fakes.rt())
    assert out.result["cniVersion"] == "0.4.0"


@pytest.mark.parametrize(
    "stdout, words",
    [("", "failed to unmarshal raw result"), ("[1]", "expected a JSON object"), ('{"cniVersion": "9.9.9"}', "unsupported")],
)
def test_unusable_add_output_fails_the_chain(fakes, stdout, words):
    with pytest.raises(ChainError) as e:
        fakes.runtime().add_list(net_list([{"type": "fake-a", "fake": {"stdout": stdout}}]), fakes.rt())
    assert words in str(e.value) and e.value.plugin_type == "fake-a"


def test_exec_prefix_runs_the_plugin_under_another_argv(fakes):
    out = fakes.runtime(exec_prefix=["env", "FAKE_PREFIXED=yes"]).add_list(net_list(ABC[:1]), fakes.rt())
    assert fakes.calls("ADD")[0]["env"]["FAKE_PREFIXED"] == "yes"
    assert out.trace[0].argv == ["env", "FAKE_PREFIXED=yes", os.path.join(str(fakes.bin), "fake-a")]
    assert out.trace[0].path == os.path.join(str(fakes.bin), "fake-a")


def test_a_hanging_plugin_is_killed_at_the_timeout_and_recorded(fakes):
    with pytest.raises(ChainError) as e:
        fakes.runtime(timeout=1).add_list(net_list([{"type": "fake-a", "fake": {"sleep": 30}}]), fakes.rt())
    rec = e.value.trace[-1]
    assert rec.exit_code == -9 and "timeout" in rec.error and 900 < rec.duration_ms < 10000


# ---------------------------------------------------------------------------
# DEL


def _after_add(fakes, verb):
    """ADD of ABC, then `verb` on the same attachment; every plugin gets the ADD's result as
    prevResult. (the verb's ChainResult, the plugins it ran in order)"""
    net = net_list(ABC)
    runtime = fakes.runtime()
    added = runtime.add_list(net, fakes.rt())
    out = {"DEL": runtime.del_list, "CHECK": runtime.check_list}[verb](net, fakes.rt())
    calls = fakes.calls(verb)
    assert all(c["stdin"]["prevResult"] == added.result for c in calls)
    return out, [c["plugin"] for c in calls]


def test_del_runs_in_reverse_with_the_cached_result_and_removes_the_cache(fakes):
    out, order = _after_add(fakes, "DEL")
    assert order == ["fake-c", "fake-b", "fake-a"]
    assert [os.path.basename(r.path) for r in out.trace] == ["fake-c", "fake-b", "fake-a"]
    assert read_entry(fakes.cache, "fakenet", "ctr1", "eth0") is None
    assert "cache entry removed" in out.notes


def test_del_failure_keeps_the_cache_entry_for_a_retry(fakes):
    plugins = [{"type": "fake-a"}, {"type": "fake-b", "fake": {"fail": ["DEL"]}}, {"type": "fake-c"}]
    net = net_list(plugins)
    runtime = fakes.runtime()
    runtime.add_list(net, fakes.rt())
    with pytest.raises(ChainError) as e:
        runtime.del_list(net, fakes.rt())
    assert str(e.value).startswith('plugin type="fake-b" name="fakenet" failed (delete): fake-b refuses DEL')
    assert [c["plugin"] for c in fakes.calls("DEL")] == ["fake-c", "fake-b"]
    assert read_entry(fakes.cache, "fakenet", "ctr1", "eth0") is not None


def test_del_prev_result_is_converted_to_the_list_version(fakes):
    write_entry(fakes.cache, CacheEntry("ctr1", "fakenet", "eth0", result={"cniVersion": "1.0.0", "ips": [{"address": "10.9.0.2/24"}]}))
    fakes.runtime().del_list(net_list(ABC[:1], version="0.4.0"), fakes.rt())
    prev = fakes.calls("DEL")[0]["stdin"]["prevResult"]
    assert prev["cniVersion"] == "0.4.0" and prev["ips"] == [{"version": "4", "address": "10.9.0.2/24"}]


def test_del_below_0_4_0_sends_no_prev_result_but_still_removes_the_cache(fakes):
    net = net_list(ABC[:1], version="0.3.1")
    runtime = fakes.runtime()
    runtime.add_list(net, fakes.rt())
    out = runtime.del_list(net, fakes.rt())
    assert "prevResult" not in fakes.calls("DEL")[0]["stdin"]
    assert read_entry(fakes.cache, "fakenet", "ctr1", "eth0") is None
    assert any("< 0.4.0" in n for n in out.notes)


def test_del_without_cache_runs_without_prev_result(fakes):
    out = fakes.runtime().del_list(net_list(ABC), fakes.rt())
    assert all("prevResult" not in c["stdin"] for c in fakes.calls("DEL"))
    assert "no cached result: DEL without prevResult" in out.notes


def test_del_with_a_corrupt_cache_drops_it_and_proceeds(fakes):
    os.makedirs(os.path.join(fakes.cache, "results"))
    path = os.path.join(fakes.cache, "results", "fakenet-ctr1-eth0")
    open(path, "w").write("{corrupt")
    out = fakes.runtime().del_list(net_list(ABC[:1]), fakes.rt())
    assert "prevResult" not in fakes.calls("DEL")[0]["stdin"] and not os.path.exists(path)
    assert any("unusable cache entry removed" in n for n in out.notes)


def test_del_env_carries_the_attachment(fakes):
    fakes.runtime().del_list(net_list(ABC[:1]), fakes.rt(netns="", ifname="eth1"))
    env = fakes.calls("DEL")[0]["env"]
    assert (env["CNI_COMMAND"], env["CNI_CONTAINERID"], env["CNI_NETNS"], env["CNI_IFNAME"]) == ("DEL", "ctr1", "", "eth1")


# ---------------------------------------------------------------------------
# CHECK


def test_check_forward_order_with_cached_prev_result(fakes):
    out, order = _after_add(fakes, "CHECK")
    assert order == ["fake-a", "fake-b", "fake-c"]
    assert len(out.trace) == 3 and read_entry(fakes.cache, "fakenet", "ctr1", "eth0") is not None


def test_check_below_0_4_0_is_an_error_without_exec(fakes):
    with pytest.raises(ChainError) as e:
        fakes.runtime().check_list(net_list(ABC, version="0.3.1"), fakes.rt())
    assert str(e.value) == 'configuration version "0.3.1" does not support the CHECK command'
    assert e.value.code == 1 and e.value.plugin_type == "" and fakes.calls() == []


@pytest.mark.parametrize("value", [True, "true"])
def test_disable_check_runs_nothing(fakes, value):
    out = fakes.runtime().check_list(net_list(ABC, disableCheck=value), fakes.rt())
    assert fakes.calls() == [] and out.trace == [] and "disableCheck" in out.notes[0]


def test_check_without_cache_sends_no_prev_result(fakes):
    fakes.runtime().check_list(net_list(ABC[:1]), fakes.rt())
    assert "prevResult" not in fakes.calls("CHECK")[0]["stdin"]


def test_check_with_a_corrupt_cache_fails_without_exec(fakes):
    os.makedirs(os.path.join(fakes.cache, "results"))
    open(os.path.join(fakes.cache, "results", "fakenet-ctr1-eth0"), "w").write("{corrupt")
    with pytest.raises(ChainError, match='failed to get network "fakenet" cached result'):
        fakes.runtime().check_list(net_list(ABC[:1]), fakes.rt())
    assert fakes.calls() == []


def test_check_failure_names_the_plugin(fakes):
    plugins = [{"type": "fake-a", "fake": {"fail": ["CHECK"]}}, {"type": "fake-b"}]
    with pytest.raises(ChainError) as e:
        fakes.runtime().check_list(net_list(plugins), fakes.rt())
    assert str(e.value).startswith('plugin type="fake-a" name="fakenet" failed (check):')
    assert len(fakes.calls("CHECK")) == 1


# ---------------------------------------------------------------------------
# GC


def _attach(fakes, net, *ids):
    runtime = fakes.runtime()
    for cid in ids:
        runtime.add_list(net, fakes.rt(cid, netns="/var/run/netns/" + cid, args=[("K", cid)], capability_args={"mac": cid}))


def test_gc_deletes_stale_attachments_of_this_network_only_and_sends_gc(fakes):
    net = net_list(ABC[:2], version="1.1.0")
    other = net_list(ABC[:1], version="1.1.0", name="othernet")
    _attach(fakes, net, "keep", "stale1", "stale2")
    _attach(fakes, other, "foreign")
    fakes.log.unlink()
    out = fakes.runtime().gc_list(net, [("keep", "eth0")], cache_dir=fakes.cache)

    dels = fakes.calls("DEL")
    assert [(c["plugin"], c["env"]["CNI_CONTAINERID"]) for c in dels] == [
        ("fake-b", "stale1"), ("fake-a", "stale1"), ("fake-b", "stale2"), ("fake-a", "stale2"),
    ]
    # the stale DEL replays the cached netns, CNI_ARGS and capability args
    assert dels[0]["env"]["CNI_NETNS"] == "/var/run/netns/stale1" and dels[0]["env"]["CNI_ARGS"] == "K=stale1"
    assert dels[0]["stdin"]["prevResult"]["ips"]
    left = sorted((a.network_name, a.container_id) for a in list_attachments(fakes.cache))
    assert left == [("fakenet", "keep"), ("othernet", "foreign")]

    gcs = fakes.calls("GC")
    assert [c["plugin"] for c in gcs] == ["fake-a", "fake-b"]
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    for c in gcs:
        assert c["stdin"]["cni.dev/valid-attachments"] == valid and c["stdin"]["cni.dev/attachments"] == valid
        assert (c["stdin"]["name"], c["stdin"]["cniVersion"]) == ("fakenet", "1.1.0")
        assert c["env"]["CNI_CONTAINERID"] == "" and c["env"]["CNI_IFNAME"] == "" and c["env"]["CNI_PATH"] == str(fakes.bin)
    assert len(out.trace) == 6


def test_gc_without_a_valid_set_deletes_every_cached_attachment_and_sends_no_key(fakes):
    net = net_list(ABC[:1], version="1.1.0")
    _attach(fakes, net, "x1", "x2")
    fakes.runtime().gc_list(net, None, cache_dir=fakes.cache)
    assert list_attachments(fakes.cache) == []
    [gc] = fakes.calls("GC")
    assert "cni.dev/valid-attachments" not in gc["stdin"] and "cni.dev/attachments" not in gc["stdin"]


def test_gc_below_1_1_0_deletes_stale_but_sends_no_gc(fakes):
    net = net_list(ABC[:1], version="1.0.0")
    _attach(fakes, net, "x1")
    out = fakes.runtime().gc_list(net, [], cache_dir=fakes.cache)
    assert fakes.calls("GC") == [] and len(fakes.calls("DEL")) == 1
    assert any("< 1.1.0" in n for n in out.notes)


def test_disable_gc_does_nothing_at_all(fakes):
    net = net_list(ABC[:1], version="1.1.0", disableGC=True)
    _attach(fakes, net, "x1")
    fakes.log.unlink()
    out = fakes.runtime().gc_list(net, [], cache_dir=fakes.cache)
    assert fakes.calls() == [] and out.trace == [] and len(list_attachments(fakes.cache)) == 1


def test_gc_continues_past_errors_and_reports_them_all(fakes):
    plugins = [{"type": "fake-a", "fake": {"fail": ["GC", "DEL"]}}, {"type": "fake-b", "fake": {"fail": ["GC"]}}, {"type": "fake-c"}]
    net = net_list(plugins, version="1.1.0")
    _attach(fakes, net, "stale")
    with pytest.raises(ChainError) as e:
        fakes.runtime().gc_list(net, [], cache_dir=fakes.cache)
    err = e.value
    assert [str(x) for x in err.errors] == [
        'failed to delete stale attachment stale eth0: plugin type="fake-a" name="fakenet" failed (delete): fake-a refuses DEL; asked to',
        "failed to GC plugin fake-a: fake-a refuses GC; asked to",
        "failed to GC plugin fake-b: fake-b refuses GC; asked to",
    ]
    assert str(err) == "\n".join(str(x) for x in err.errors)
    assert [c["plugin"] for c in fakes.calls("GC")] == ["fake-a", "fake-b", "fake-c"]  # went on
    assert len(list_attachments(fakes.cache)) == 1  # the failed DEL kept its cache entry
    assert err.errors[0].cause.plugin_type == "fake-a"
    assert [r.command for r in err.trace] == ["DEL"] * 3 + ["GC"] * 3  # c, b, a (fails); then GC to all


# ---------------------------------------------------------------------------
# STATUS


def test_status_below_1_1_0_succeeds_without_exec(fakes):
    out = fakes.runtime().status_list(net_list(ABC, version="1.0.0"))
    assert fakes.calls() == [] and out.trace == []


def test_status_stops_at_the_first_error_keeping_its_code(fakes):
    plugins = [{"type": "fake-a"}, {"type": "fake-b", "fake": {"fail": ["STATUS"], "code": 50}}, {"type": "fake-c"}]
    with pytest.raises(ChainError) as e:
        fakes.runtime().status_list(net_list(plugins, version="1.1.0"))
    assert e.value.code == 50 and e.value.plugin_type == "fake-b"
    assert [c["plugin"] for c in fakes.calls("STATUS")] == ["fake-a", "fake-b"]
    assert fakes.calls("STATUS")[0]["env"]["CNI_PATH"] == str(fakes.bin)


def test_status_success(fakes):
    out = fakes.runtime().status_list(net_list(ABC, version="1.1.0"))
    assert [r.command for r in out.trace] == ["STATUS"] * 3


# ---------------------------------------------------------------------------
# VERSION


def test_version_probe_uses_libcni_dummy_env(fakes):
    info = plugin_versions(str(fakes.bin / "fake-a"))
    assert info.answers and info.supported_versions == ALL_VERSIONS and info.cni_version == "1.1.0"
    [call] = fakes.calls("VERSION")
    assert call["stdin"] == {"cniVersion": "1.1.0"}
    assert (call["env"]["CNI_NETNS"], call["env"]["CNI_IFNAME"], call["env"]["CNI_PATH"]) == ("dummy", "dummy", "dummy")
    assert info.record.command == "VERSION"


def test_a_plugin_predating_version_supports_only_0_1_0(fakes):
    info = plugin_versions(fakes.plugin("old", version_reply="unknown"))
    assert info.answers and info.supported_versions == ["0.1.0"] and info.inferred


def test_a_0_2_0_reply_without_supported_versions_means_0_1_0_and_0_2_0(fakes):
    info = plugin_versions(fakes.plugin("old2", version_reply={"cniVersion": "0.2.0"}))
    assert info.supported_versions == ["0.1.0", "0.2.0"] and info.inferred


@pytest.mark.parametrize(
    "reply, words",
    [
        ("not json", "decoding version info"),
        ({"supportedVersions": ["1.0.0"]}, "missing field cniVersion"),
        ({"cniVersion": "0.3.0"}, "missing field supportedVersions"),
    ],
)
def test_unusable_version_replies_mean_does_not_answer(fakes, reply, words):
    info = plugin_versions(fakes.plugin("odd", version_reply=reply))
    assert not info.answers and info.error.startswith("does not answer VERSION") and words in info.error


def test_probe_dir_lists_every_executable(fakes):
    (fakes.bin / "README").write_text("not a plugin")
    out = probe_dir(str(fakes.bin))
    assert [os.path.basename(p.path) for p in out] == ["fake-a", "fake-b", "fake-c"]
    assert all(p.answers for p in out)
    json.dumps([p.as_dict() for p in out])


def test_validate_list_reports_each_plugin(fakes):
    fakes.plugin("fake-old", version_reply="unknown")
    fakes.plugin("fake-mute", version_reply="")
    plugins = [
        {"type": "fake-a", "capabilities": {"portMappings": True, "mac": False}},
        {"type": "fake-old"},
        {"type": "fake-mute"},
        {"type": "missing"},
        {"type": "fake-b", "capabilities": {"ips": True}},
    ]
    report = fakes.runtime().validate_list(net_list(plugins, version="1.0.0"))
    assert not report.ok
    assert [p.supported for p in report.plugins] == [True, False, False, False, True]
    assert report.errors[0] == 'plugin fake-old does not support config version "1.0.0"'
    assert report.errors[1].startswith("plugin fake-mute does not answer VERSION")
    assert report.errors[2].startswith("failed to find plugin") and "missing" in report.errors[2]
    assert report.capabilities == ["portMappings", "ips"]
    assert len(report.trace) == 4
    json.dumps(report.as_dict())


def test_validate_list_ok(fakes):
    assert fakes.runtime().validate_list(net_list(ABC, version="1.1.0")).ok


def test_runtime_plugin_versions_by_type(fakes):
    assert fakes.runtime().plugin_versions("fake-a").supported_versions == ALL_VERSIONS
    assert "failed to find plugin" in fakes.runtime().plugin_versions("nope").error
