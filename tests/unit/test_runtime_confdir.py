# SPDX-License-Identifier: GPL-3.0-or-later
"""runtime.confdir: which file a runtime uses, how it is parsed, what each error names."""

import json
import os

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime import confdir
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.confdir import (
    ConfError,
    ConfNotFound,
    conf_files,
    find_active,
    load_conf_file,
    scan,
)


def write(directory, name, obj):
    path = os.path.join(str(directory), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def a_list(name="net", version="1.0.0", types=("bridge",), **extra):
    return dict({"cniVersion": version, "name": name, "plugins": [{"type": t} for t in types]}, **extra)


def a_conf(name="net", version="0.3.1", type_="bridge", **extra):
    return dict({"cniVersion": version, "name": name, "type": type_}, **extra)


# ---------------------------------------------------------------------------
# conf_files


def test_conf_files_lists_the_three_extensions_sorted_and_skips_the_rest(tmp_path):
    for name in ("20-b.conflist", "10-a.conf", "30-c.json", "05-x.yaml", "99-z.conf.bak", "conf", ".conf"):
        write(tmp_path, name, "{}")
    (tmp_path / "15-dir.conf").mkdir()  # directories are skipped even with a matching name
    names = [os.path.basename(p) for p in conf_files(str(tmp_path))]
    # Go's filepath.Ext: ".conf" is the extension of ".conf", "conf" has none
    assert names == [".conf", "10-a.conf", "20-b.conflist", "30-c.json"]


def test_conf_files_is_not_recursive_and_a_missing_dir_is_empty(tmp_path):
    write(tmp_path, "net/extra.conf", a_conf())
    assert conf_files(str(tmp_path)) == []
    assert conf_files(str(tmp_path / "missing")) == []


def test_conf_files_orders_lexically_not_numerically(tmp_path):
    for name in ("9-a.conf", "10-b.conf", "100-c.conflist"):
        write(tmp_path, name, "{}")
    assert [os.path.basename(p) for p in conf_files(str(tmp_path))] == ["10-b.conf", "100-c.conflist", "9-a.conf"]


# ---------------------------------------------------------------------------
# load_conf_file: lists


def test_conflist_is_parsed_into_a_typed_list_keeping_the_file_bytes(tmp_path):
    raw = json.dumps(a_list(types=("bridge", "portmap")), indent=2).encode()
    path = write(tmp_path, "10-net.conflist", raw)
    conf = load_conf_file(path)
    assert (conf.name, conf.cni_version, conf.plugin_types) == ("net", "1.0.0", ["bridge", "portmap"])
    assert conf.bytes == raw and conf.path == path and not conf.upconverted
    assert (conf.disable_check, conf.disable_gc, conf.load_only_inlined_plugins) == (False, False, False)


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), ("true", True), ("FALSE", False), ("True", True)],
)
@pytest.mark.parametrize("key, attr", [("disableCheck", "disable_check"), ("disableGC", "disable_gc"), ("loadOnlyInlinedPlugins", "load_only_inlined_plugins")])
def test_list_booleans_accept_bools_and_true_false_strings(tmp_path, key, attr, value, expected):
    conf = load_conf_file(write(tmp_path, "n.conflist", a_list(**{key: value})))
    assert getattr(conf, attr) is expected


@pytest.mark.parametrize("value", ["yes", 1, None, "1"])
def test_list_booleans_reject_anything_else_naming_file_and_field(tmp_path, value):
    path = write(tmp_path, "n.conflist", a_list(disableCheck=value))
    with pytest.raises(ConfError) as e:
        load_conf_file(path)
    assert path in str(e.value) and "disableCheck" in str(e.value) and e.value.path == path


@pytest.mark.parametrize(
    "version, versions, expected",
    [
        ("1.0.0", ["0.4.0", "1.1.0"], "1.1.0"),  # highest of the pool wins
        ("1.0.0", ["0.4.0", "2.0.0"], "1.0.0"),  # newer than we implement: dropped
        ("", ["0.3.1", "1.0.0"], "1.0.0"),
        ("3.0.0", ["0.4.0"], "0.4.0"),  # an unsupported cniVersion is dropped too
        ("1.0.0", [], "1.0.0"),
        ("", ["9.9.9"], ""),
    ],
)
def test_cni_versions_picks_the_highest_supported(tmp_path, version, versions, expected):
    obj = a_list(version=version, cniVersions=versions)
    if not version:
        del obj["cniVersion"]
    conf = load_conf_file(write(tmp_path, "n.conflist", obj))
    assert conf.cni_version == expected and conf.cni_versions == versions


BAD_LISTS = [
    (b"{not json", "error parsing configuration list"),
    (b"[1, 2]", "expected a JSON object"),
    ({"cniVersion": "1.0.0", "plugins": [{"type": "x"}]}, "missing field 'name'"),
    ({"name": 7, "plugins": [{"type": "x"}]}, "field 'name' must be a string"),
    ({"name": "n", "cniVersion": 1, "plugins": [{"type": "x"}]}, "field 'cniVersion' must be a string"),
    ({"name": "n", "cniVersions": "1.0.0", "plugins": [{"type": "x"}]}, "'cniVersions' must be a list"),
    ({"name": "n", "cniVersions": [1], "plugins": [{"type": "x"}]}, "cniVersions[0] must be a string"),
    ({"name": "n", "cniVersions": ["1.x"], "plugins": [{"type": "x"}]}, "cniVersions[0]"),
    ({"name": "n", "plugins": {"type": "x"}}, "'plugins' must be a list"),
    ({"name": "n", "plugins": []}, "no plugins in list"),
    ({"name": "n", "plugins": [{"type": "x"}, {"mtu": 1}]}, "plugins[1]: missing 'type'"),
    ({"name": "n", "plugins": [{"type": ""}]}, "plugins[0]: missing 'type'"),
    ({"name": "n", "plugins": [{"type": 5}]}, "plugins[0].type must be a string"),
    ({"name": "n", "plugins": ["bridge"]}, "plugins[0] must be a JSON object"),
    ({"name": "n", "plugins": [{"type": "x", "capabilities": {"portMappings": "yes"}}]}, "plugins[0].capabilities"),
    ({"name": "n", "loadOnlyInlinedPlugins": True}, "no 'plugins' key"),
    ({"name": "n"}, "no plugin configs found"),
]


@pytest.mark.parametrize("content, words", BAD_LISTS)
def test_bad_conflists_are_rejected_naming_file_and_field(tmp_path, content, words):
    path = write(tmp_path, "bad.conflist", content)
    with pytest.raises(ConfError) as e:
        load_conf_file(path)
    assert words in str(e.value)
    assert str(e.value).startswith(path + ": ")


def test_plugins_from_the_network_subdir_are_appended_sorted(tmp_path):
    path = write(tmp_path, "10-net.conflist", a_list(types=("bridge",)))
    write(tmp_path, "net/20-tuning.conf", {"type": "tuning"})
    write(tmp_path, "net/10-portmap.conf", {"type": "portmap", "capabilities": {"portMappings": True}})
    write(tmp_path, "net/30-ignored.json", {"type": "bandwidth"})  # only .conf counts
    conf = load_conf_file(path)
    assert conf.plugin_types == ["bridge", "portmap", "tuning"]
    assert [os.path.basename(p) for p in conf.plugin_files] == ["10-portmap.conf", "20-tuning.conf"]


def test_a_list_may_consist_only_of_subdir_plugins(tmp_path):
    path = write(tmp_path, "10-net.conflist", {"cniVersion": "1.1.0", "name": "net"})
    write(tmp_path, "net/a.conf", {"type": "bridge"})
    assert load_conf_file(path).plugin_types == ["bridge"]


def test_load_only_inlined_plugins_ignores_the_subdir(tmp_path):
    path = write(tmp_path, "10-net.conflist", a_list(loadOnlyInlinedPlugins="true"))
    write(tmp_path, "net/a.conf", {"type": "tuning"})
    conf = load_conf_file(path)
    assert conf.plugin_types == ["bridge"] and conf.plugin_files == []


def test_a_bad_subdir_plugin_names_its_own_file(tmp_path):
    path = write(tmp_path, "10-net.conflist", a_list())
    bad = write(tmp_path, "net/a.conf", {"mtu": 1400})
    with pytest.raises(ConfError) as e:
        load_conf_file(path)
    assert e.value.path == bad and "missing 'type'" in str(e.value)


def test_a_network_name_that_walks_out_of_the_dir_loads_no_subdir(tmp_path):
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    write(tmp_path, "outside.conf", {"type": "evil"})
    path = write(conf_dir, "10.conflist", a_list(name=".."))
    assert load_conf_file(path).plugin_types == ["bridge"]


# ---------------------------------------------------------------------------
# load_conf_file: single configs


@pytest.mark.parametrize("ext", [".conf", ".json"])
def test_single_conf_is_upconverted_to_a_one_plugin_list(tmp_path, ext):
    obj = a_conf(bridge="cni0", ipam={"type": "host-local"})
    conf = load_conf_file(write(tmp_path, "10-net" + ext, obj))
    assert conf.upconverted and (conf.name, conf.cni_version) == ("net", "0.3.1")
    assert conf.plugins == [obj]
    # the bytes cached by libcni are the synthesised list
    assert json.loads(conf.bytes) == {"cniVersion": "0.3.1", "name": "net", "plugins": [obj]}


def test_a_list_saved_as_conf_is_rejected_for_missing_type(tmp_path):
    path = write(tmp_path, "10-net.conf", a_list())
    with pytest.raises(ConfError) as e:
        load_conf_file(path)
    assert "config: missing 'type'" in str(e.value) and e.value.path == path


def test_single_conf_does_not_load_subdir_plugins(tmp_path):
    path = write(tmp_path, "10-net.conf", a_conf())
    write(tmp_path, "net/a.conf", {"type": "tuning"})
    assert load_conf_file(path).plugin_types == ["bridge"]


def test_unreadable_file_is_an_io_error_naming_it(tmp_path):
    with pytest.raises(ConfError) as e:
        load_conf_file(str(tmp_path / "gone.conflist"))
    assert e.value.code == 5 and "gone.conflist" in str(e.value)


# ---------------------------------------------------------------------------
# find_active


def test_without_a_name_the_first_file_wins_whatever_its_kind(tmp_path):
    write(tmp_path, "20-list.conflist", a_list(name="listed"))
    first = write(tmp_path, "10-single.conf", a_conf(name="single"))
    active = find_active(str(tmp_path))
    assert active.path == first and active.conf.name == "single"
    assert "first of 2" in active.reason and "lexical" in active.reason


def test_without_a_name_an_invalid_first_file_is_an_error_not_skipped(tmp_path):
    write(tmp_path, "10-broken.conflist", b"{")
    write(tmp_path, "20-good.conflist", a_list())
    with pytest.raises(ConfError) as e:
        find_active(str(tmp_path))
    assert "10-broken.conflist" in str(e.value)


def test_by_name_conflists_come_before_confs_even_if_later_in_order(tmp_path):
    write(tmp_path, "10-net.conf", a_conf(name="net"))
    lst = write(tmp_path, "90-net.conflist", a_list(name="net"))
    active = find_active(str(tmp_path), "net")
    assert active.path == lst and ".conflist" in active.reason


def test_by_name_falls_back_to_conf_and_json(tmp_path):
    write(tmp_path, "10-other.conflist", a_list(name="other"))
    single = write(tmp_path, "20-net.json", a_conf(name="net"))
    active = find_active(str(tmp_path), "net")
    assert active.path == single and active.conf.upconverted


def test_by_name_first_match_in_lexical_order(tmp_path):
    first = write(tmp_path, "10-a.conflist", a_list(name="net", version="0.4.0"))
    write(tmp_path, "20-b.conflist", a_list(name="net", version="1.0.0"))
    assert find_active(str(tmp_path), "net").path == first


def test_by_name_an_unparsable_file_before_the_match_aborts(tmp_path):
    write(tmp_path, "05-bad.conflist", b"{")
    write(tmp_path, "10-net.conflist", a_list(name="net"))
    with pytest.raises(ConfError) as e:
        find_active(str(tmp_path), "net")
    assert "05-bad.conflist" in str(e.value)


def test_not_found_errors_have_libcni_wording(tmp_path):
    with pytest.raises(ConfNotFound) as e:
        find_active(str(tmp_path))
    assert str(e.value) == "no net configurations found in %s" % tmp_path
    with pytest.raises(ConfNotFound) as e:
        find_active(str(tmp_path), "net")
    assert str(e.value) == "no net configurations found in %s" % tmp_path
    write(tmp_path, "10-other.conflist", a_list(name="other"))
    with pytest.raises(ConfNotFound) as e:
        find_active(str(tmp_path), "net")
    assert str(e.value) == 'no net configuration with name "net" in %s' % tmp_path


# ---------------------------------------------------------------------------
# scan


def test_scan_reports_every_file_in_priority_order_and_never_raises(tmp_path):
    write(tmp_path, "10-broken.conflist", b"{")
    write(tmp_path, "20-list-in-conf.conf", a_list())
    write(tmp_path, "30-good.conflist", a_list(name="good", types=("bridge", "portmap")))
    out = scan(str(tmp_path))
    assert [(s.priority, os.path.basename(s.path), s.kind, s.valid, s.active) for s in out] == [
        (0, "10-broken.conflist", "conflist", False, True),
        (1, "20-list-in-conf.conf", "conf", False, False),
        (2, "30-good.conflist", "conflist", True, False),
    ]
    assert "error parsing configuration list" in out[0].error
    assert "missing 'type'" in out[1].error
    facts = out[2].as_dict()
    assert facts["name"] == "good" and facts["plugins"] == ["bridge", "portmap"] and facts["error"] == ""
    json.dumps([s.as_dict() for s in out])  # module-returnable


def test_scan_of_a_missing_dir_is_empty_and_of_an_unlistable_path_is_one_error(tmp_path):
    assert scan(str(tmp_path / "missing")) == []
    not_a_dir = write(tmp_path, "file", "x")
    out = scan(not_a_dir)
    assert len(out) == 1 and out[0].kind == "dir" and not out[0].valid and out[0].error


def test_network_config_list_as_dict_is_json_serialisable(tmp_path):
    conf = load_conf_file(write(tmp_path, "n.conflist", a_list(disableGC=True)))
    d = conf.as_dict()
    assert d["disableGC"] is True and d["plugins"] == [{"type": "bridge"}]
    json.dumps(d)
    assert confdir.CONF_EXTENSIONS == (".conf", ".conflist", ".json")


def test_plugin_keys_fold_like_libcni_but_the_list_keys_are_exact(tmp_path):
    # libcni decodes a plugin into types.PluginConf (Go's key rule); the list itself into a map
    path = write(tmp_path, "10.conflist", {"cniVersion": "1.0.0", "name": "net",
                                           "plugins": [{"Type": "portmap", "Capabilities": {"portMappings": True}}]})
    net = load_conf_file(path)
    assert net.plugin_types == ["portmap"] and confdir.conf_capabilities(net.plugins[0]) == {"portMappings": True}
    single = load_conf_file(write(tmp_path, "20.conf", {"CNIVersion": "0.3.1", "Name": "one", "TYPE": "bridge"}))
    assert (single.name, single.cni_version, single.plugin_types) == ("one", "0.3.1", ["bridge"])
    with pytest.raises(ConfError):
        load_conf_file(write(tmp_path, "30.conflist", {"Name": "x", "plugins": [{"type": "bridge"}]}))
