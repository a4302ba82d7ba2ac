# SPDX-License-Identifier: GPL-3.0-or-later
"""Property-based fuzzing of the installed plugins through the real exec path.

Random and hostile values (newlines, NUL, '%', unicode, huge numbers, deep
nesting) in the netconf, runtimeConfig, prevResult, CNI_ARGS and env reach
the plugins exactly as a runtime passes them: exec of the installed
launcher, env + stdin, inside a "host" namespace this test makes, with
CNI_NETNS a pod namespace it makes. Invariants after every call:

- stdout is one JSON document: exit 0 with a valid result (ADD) or nothing,
  or exit != 0 with a spec error {code, msg}; never a traceback;
- a failed ADD leaves nothing behind: no new link but a bridge (Go leaves
  the bridge too), no lease, no rule naming the container;
- every nft table in the host namespace is one of ours, every iptables line
  is in the grammar of what we write, and the filter table stays empty.

Safety: what is fuzzed never includes where the plugins act (CNI_NETNS,
CNI_PATH, dataDir, the caller's namespace), so every change stays inside
the test's namespaces and temp dir. Bounded: max_examples and a deadline.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

import pytest
from cnitest import exec_plugin

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ansible_collections.nodenet.cni.plugins.module_utils.cni.net import nftcmd  # noqa: E402
from ansible_collections.nodenet.cni.plugins.module_utils.cni.config.result import parse_result  # noqa: E402

EXAMPLES = int(os.environ.get("NODENET_FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=60),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
    database=None,
)

INJECTIONS = [
    "fe80::1%lo\nCOMMIT\n*filter\n-I INPUT 1 -j ACCEPT\nCOMMIT\n*nat\n-A CNI-HOSTPORT-DNAT -d ::1",
    "10.0.0.1\n",
    "10.0.0.1 ; add rule ip filter input accept",
    "10.0.0.1\x00",
    '"; flush ruleset; "',
    "fe80::1%eth0",
    "%s%n%x",
    "../../etc",
    "net\n",
    "é" * 9,
    "\u202e\u0000\ud7ff",
    "",
    " ",
    "-j ACCEPT",
    "# comment",
    "COMMIT",
]
# no NUL in env values (execve cannot carry it), no lone surrogates (not encodable)
ENV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
TEXT = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), st.sampled_from(INJECTIONS))
NUMBERS = st.one_of(st.integers(), st.sampled_from([0, -1, 65536, 2**31, 2**63, 10**100]), st.floats(allow_nan=False, allow_infinity=False))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)


def _deep(depth: int):
    value: object = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
VALUES = st.one_of(JSON, st.sampled_from([_deep(60), _deep(400)]))


def _set_path(obj, path, value):
    """Set obj[path[0]][path[1]]... creating dicts, tolerating non-dict parents (replaces them)."""
    for key in path[:-1]:
        nxt = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(nxt, dict):
            nxt = {}
            obj[key] = nxt
        obj = nxt
    obj[path[-1]] = value


# -- per-plugin base configs and the keys worth mutating ---------------------

PREV = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}], "ips": [{"address": "10.91.0.5/24", "interface": 0}]}


def _base(plugin, data_dir):
    ipam = {"type": "nodenet-host-local", "dataDir": data_dir, "ranges": [[{"subnet": "10.91.0.0/24"}]]}
    if plugin == "nodenet-bridge":
        return {"cniVersion": "1.0.0", "name": "fuzznet", "type": plugin, "bridge": "fz0", "isGateway": True, "ipMasq": True, "ipam": ipam}
    if plugin == "nodenet-host-local":
        return {"cniVersion": "1.0.0", "name": "fuzznet", "type": plugin, "ipam": ipam}
    if plugin == "nodenet-portmap":
        return {"cniVersion": "1.0.0", "name": "fuzznet", "type": plugin, "prevResult": json.loads(json.dumps(PREV)),
                "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}}
    return {"cniVersion": "1.0.0", "name": "fuzznet", "type": plugin}


MUTABLE = {
    "nodenet-bridge": [("name",), ("cniVersion",), ("bridge",), ("mtu",), ("ipMasq",), ("ipMasqBackend",), ("isGateway",), ("vlan",),
                       ("hairpinMode",), ("macspoofchk",), ("ipam", "ranges"), ("ipam", "routes"), ("args", "cni"), ("runtimeConfig", "mac"),
                       ("runtimeConfig", "ips"), ("dns",), ("ipam", "type")],
    "nodenet-host-local": [("name",), ("cniVersion",), ("ipam", "ranges"), ("ipam", "subnet"), ("ipam", "routes"), ("ipam", "rangeStart"),
                           ("runtimeConfig", "ips"), ("args", "cni", "ips"), ("ipam", "resolvConf")],
    "nodenet-portmap": [("name",), ("cniVersion",), ("runtimeConfig", "portMappings"), ("prevResult",), ("prevResult", "ips"),
                        ("conditionsV4",), ("conditionsV6",), ("externalSetMarkChain",), ("backend",), ("snat",), ("masqAll",),
                        ("markMasqBit",)],
    "nodenet-loopback": [("name",), ("cniVersion",), ("prevResult",)],
}

PORT_MAPPING = st.fixed_dictionaries(
    {"hostPort": st.one_of(st.integers(1, 65535), NUMBERS), "containerPort": st.one_of(st.integers(1, 65535), NUMBERS)},
    optional={"protocol": st.one_of(st.sampled_from(["tcp", "udp", "sctp", "TCP"]), TEXT),
              "hostIP": st.one_of(st.sampled_from(["", "127.0.0.1", "::1", "fd00::1", "0.0.0.0"]), TEXT)},
)
PREV_IPS = st.lists(st.fixed_dictionaries({"address": st.one_of(st.sampled_from(["10.91.0.9/24", "fd00::9/64"]), TEXT)},
                                          optional={"interface": st.one_of(st.integers(-2, 3), NUMBERS)}), max_size=3)
SPECIFIC = {
    ("runtimeConfig", "portMappings"): st.lists(PORT_MAPPING, max_size=4),
    ("prevResult", "ips"): PREV_IPS,
    ("conditionsV4",): st.lists(TEXT, max_size=3),
    ("conditionsV6",): st.lists(TEXT, max_size=3),
}


@st.composite
def calls(draw, plugin):
    """(netconf mutations, env overrides) for one call."""
    keys = MUTABLE[plugin]
    mutations = []
    for _mutation in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(keys))
        value = draw(SPECIFIC.get(path, VALUES)) if path in SPECIFIC and draw(st.booleans()) else draw(VALUES)
        mutations.append((path, value))
    env = {}
    if draw(st.booleans()):
        env["CNI_ARGS"] = draw(st.one_of(ENV_TEXT, st.sampled_from(["IP=10.91.0.7", "IgnoreUnknown=1;IP=\n", "K8S_POD_NAME=%00;IP=fe80::1%lo"])))
    if draw(st.integers(0, 4)) == 0:
        env["CNI_IFNAME"] = draw(st.one_of(ENV_TEXT, st.sampled_from(["eth0\n", "é" * 8, "a" * 16, "..", "e/0"])))
    if draw(st.integers(0, 4)) == 0:
        env["CNI_CONTAINERID"] = draw(st.one_of(ENV_TEXT, st.sampled_from(["c1\n", "-x", "c" * 300, "c1;x"])))
    raw = draw(st.sampled_from([None, None, None, b"", b"{", b'{"a":' * 3000, "\ufeff{}".encode(), b"\xff\xfe"]))
    return mutations, env, raw


# -- observing the host namespace --------------------------------------------


def _links(ns):
    out = ns.run(["ip", "-d", "-j", "link", "show"]).stdout.decode() or "[]"  # -d: with the link kind
    return {(link["ifname"], (link.get("linkinfo") or {}).get("info_kind", "")) for link in json.loads(out)}


def _ruleset_problems(ns):
    problems = []
    objs = json.loads(ns.run(["nft", "-j", "list", "ruleset"], check=False).stdout.decode() or '{"nftables": []}').get("nftables", [])
    allowed = {("ip", "cni_hostport"), ("ip6", "cni_hostport"), ("inet", "cni_plugins_masquerade"), ("bridge", "nat")}
    for obj in objs:
        table = obj.get("table")
        if table and (table["family"], table["name"]) not in allowed:
            # iptables-nft shows its tables here too: only its nat table may hold anything
            if table["name"] not in ("nat", "filter"):
                problems.append("foreign nft table %s %s" % (table["family"], table["name"]))
    for tool in ("iptables-save", "ip6tables-save"):
        text = ns.run([tool], check=False).stdout.decode()
        table = None
        section = []
        for line in text.splitlines():
            if line.startswith("#") or not line:
                continue
            if line.startswith("*"):
                table, section = line[1:], [line]
                continue
            if line == "COMMIT":
                if table == "nat":
                    try:
                        nftcmd.check_restore_lines(section + [line])
                    except Exception as e:  # noqa: BLE001 - reported as a finding
                        problems.append(str(e))
                continue
            section.append(line)
            if table == "filter" and line.startswith("-A "):
                problems.append("%s: a rule in the filter table: %s" % (tool, line))
            if table == "nat" and line.startswith(":") and not re.match(r":[A-Za-z0-9_.-]+ \S+ \[\d+:\d+\]\Z", line):
                problems.append("%s: odd chain line %r" % (tool, line))
    return problems


def _mentions(ns, container_id):
    text = ns.run(["nft", "list", "ruleset"], check=False).stdout.decode()
    text += ns.run(["iptables-save"], check=False).stdout.decode() + ns.run(["ip6tables-save"], check=False).stdout.decode()
    return container_id in text


def _leases(data_dir):
    found = []
    for dirpath, _dirs, files in os.walk(data_dir):
        found += [os.path.join(dirpath, f) for f in files if f != "lock" and not f.startswith("last_reserved_ip")]
    return found


def _check_output(run, command):
    assert "Traceback" not in run.stderr, run.stderr
    if run.rc == 0:
        if command == "ADD":
            obj = json.loads(run.stdout)
            parse_result(obj, "fuzzed result")
            assert isinstance(obj.get("cniVersion"), str)
        else:
            assert run.stdout.strip() == "", run.stdout
        return
    obj = json.loads(run.stdout)  # exactly one JSON document
    assert isinstance(obj, dict) and isinstance(obj.get("code"), int) and isinstance(obj.get("msg"), str), obj


def _fuzz_one(plugin, cni_bin, host, pod, data_dir, call):
    mutations, env_over, raw = call
    conf = _base(plugin, data_dir)
    for path, value in mutations:
        _set_path(conf, list(path), value)
    if isinstance(conf.get("ipam"), dict):
        conf["ipam"]["dataDir"] = data_dir  # never fuzz where root writes
        if conf["ipam"].get("type") in ("nodenet-bridge", "bridge"):  # covered by test_hardening; slow here
            conf["ipam"]["type"] = "nodenet-host-local"
    try:
        stdin = raw if raw is not None else json.dumps(conf).encode()
    except (ValueError, RecursionError):
        stdin = b"{}"
    env = {"CNI_NETNS": pod.path}  # the pod namespace: never fuzzed
    env.update(env_over)
    container_id = env.get("CNI_CONTAINERID", "fuzzc1")
    env["CNI_CONTAINERID"] = container_id
    links_before = _links(host)
    pod_before = _links(pod)
    path = os.path.join(cni_bin, plugin)
    add = exec_plugin(path, "ADD", stdin=stdin, host=host, netns=pod.path, container_id=container_id, cni_path=cni_bin, env=env, timeout=120)
    _check_output(add, "ADD")
    if add.rc != 0:
        new = {link for link in _links(host) - links_before if link[1] != "bridge"}
        assert not new, "a failed ADD left links behind: %s" % new
        assert _links(pod) == pod_before, "a failed ADD left links in the pod"
        assert _leases(data_dir) == [], "a failed ADD left leases"
        if re.match(r"[A-Za-z0-9][A-Za-z0-9_.-]{3,}\Z", container_id):
            assert not _mentions(host, container_id), "a failed ADD left rules behind"
    delete = exec_plugin(path, "DEL", stdin=stdin, host=host, netns=pod.path, container_id=container_id, cni_path=cni_bin, env=env, timeout=120)
    _check_output(delete, "DEL")
    assert _ruleset_problems(host) == []
    if add.rc == 0 and delete.rc == 0:
        assert _leases(data_dir) == [], "DEL after ADD left leases"
    else:
        # leave the next example a clean slate: DEL with the base config
        exec_plugin(path, "DEL", _base(plugin, data_dir), host=host, netns=pod.path, container_id="fuzzc1", cni_path=cni_bin, timeout=120)
        for lease in _leases(data_dir):
            os.unlink(lease)
        for link, kind in _links(pod) - pod_before:
            pod.run(["ip", "link", "del", link], check=False)


@pytest.fixture
def fuzz_env(cni_bin, netns_factory, tmp_path):
    host, pod = netns_factory("fzh"), netns_factory("fzp")
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir, mode=0o700)
    return cni_bin, host, pod, data_dir


@pytest.mark.parametrize("plugin", ["nodenet-bridge", "nodenet-host-local", "nodenet-portmap", "nodenet-loopback"])
def test_fuzzed_calls_keep_the_invariants(plugin, fuzz_env):
    cni_bin, host, pod, data_dir = fuzz_env

    @FUZZ
    @given(call=calls(plugin))
    def run(call):
        _fuzz_one(plugin, cni_bin, host, pod, data_dir, call)

    run()


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.one_of(TEXT, VALUES), kind=st.sampled_from(["address", "name", "chain", "ifname", "comment", "cond_nft", "cond_ipt"]))
def test_guarded_values_never_leave_the_grammar(value, kind):
    """The script guard as a property: whatever it lets through fits in one line of its grammar."""
    guard = {
        "address": nftcmd.safe_address,
        "name": nftcmd.safe_name,
        "chain": nftcmd.safe_chain,
        "ifname": nftcmd.safe_ifname,
        "comment": nftcmd.safe_comment,
        "cond_nft": lambda v, w: nftcmd.safe_condition("nftables", v, w),
        "cond_ipt": lambda v, w: nftcmd.safe_condition("iptables", v, w),
    }[kind]
    try:
        safe = guard(value, "fuzzed")
    except nftcmd.CNIError:
        return
    text = str(safe)
    assert "\n" not in text and "\r" not in text and "\x00" not in text
    if kind.startswith("cond_") or kind == "address":
        nftcmd.check_restore_lines(["*nat", "-A CNI-X %s -j ACCEPT" % text, "COMMIT"])
    if kind == "cond_nft":
        nftcmd.check_nft_script("add rule ip cni_hostport hostports %s accept\n" % text)
    if kind == "comment":
        nftcmd.check_nft_script("add rule ip cni_hostport hostports accept comment %s\n" % nftcmd.nft_quote(text))


def test_the_invariant_checker_sees_an_injected_rule(netns_factory):
    """The checker must flag what issue 10's injection did (a test that cannot fail is a defect)."""
    ns = netns_factory("fzc")
    assert _ruleset_problems(ns) == []
    ns.run(["iptables", "-I", "INPUT", "1", "-m", "comment", "--comment", "INJECTED", "-j", "ACCEPT"])
    ns.run(["nft", "add", "table", "ip", "injected"])
    problems = _ruleset_problems(ns)
    assert any("filter table" in p for p in problems) and any("injected" in p for p in problems), problems


def test_a_failed_add_may_leave_only_the_bridge(fuzz_env):
    """The invariant checker tells a bridge from any other new link (`ip -d`: without
    details `ip -j link` names no link kind): an ADD on a fresh node that fails in
    IPAM has made the bridge, as Go's does, and nothing else."""
    cni_bin, host, pod, data_dir = fuzz_env
    assert "fz0" not in {name for name, _kind in _links(host)}
    _fuzz_one("nodenet-bridge", cni_bin, host, pod, data_dir, ([(("runtimeConfig", "ips"), [{"k": "x"}])], {}, None))
    assert ("fz0", "bridge") in _links(host)
