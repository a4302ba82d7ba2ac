# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_node_state's two ways in take the same options: the module's argument spec is the one the
action plugin checks with (module_utils/node_state.py), and the entry point it runs on the node
(cni/node/state_cli.py) is in the plugin runtime the bundle installs."""

from __future__ import annotations

from ansible_collections.nodenet.cni.plugins.module_utils import node_libs, node_state
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import state_cli
from ansible_collections.nodenet.cni.plugins.modules import cni_node_state


def test_the_action_checks_with_the_modules_argument_spec():
    assert cni_node_state.ARGUMENT_SPEC is node_state.ARGUMENT_SPEC
    assert cni_node_state.PARTS == state_cli.PARTS and cni_node_state.PART_SPECS is state_cli.PART_SPECS
    # node_libs.node_module adds bin_dir to the module's options: the action's full spec has it, with its default
    assert node_state.FULL_SPEC["bin_dir"]["default"] == list(node_libs.DEFAULT_BIN_DIRS)
    assert set(node_state.FULL_SPEC) == set(state_cli.PARTS) | {"bin_dir", "runtime_dir"}


def test_the_runtime_carries_the_entry_point_the_bootstrap_looks_for():
    files = installer.collect_sources()
    assert installer.PACKAGE_NAME + "/node/state_cli.py" in files
    assert "'%s', 'node', 'state_cli.py'" % installer.PACKAGE_NAME in node_state.BOOTSTRAP


def test_validate_gives_the_modules_params_and_messages():
    params, parts, error = node_state.validate({"bridge": {"name": "cni0"}, "runtime_dir": "/r"})
    assert not error and params["bin_dir"] == ["/opt/cni/bin"] and params["netconf"] is None and params["runtime_dir"] == "/r"
    assert list(parts) == ["bridge"] and parts["bridge"]["bin_dir"] == ["/opt/cni/bin"] and parts["bridge"]["state"] == "present"
    _params, parts, error = node_state.validate({"bridge": {"name": "cni0", "colour": "red"}})
    assert error.startswith("bridge: unsupported options: colour. Supported parameters include: ") and parts == {}
    # what AnsibleModule itself refuses is left to the module (its own message)
    assert node_state.validate({"colour": "red"})[0] is None
    assert node_state.validate({"pod_subnets": {"path": "/p", "state": "gone"}})[0] is None
