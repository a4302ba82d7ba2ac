# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for black-box plugin tests (root needed: network namespaces)."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Callable, Dict, Iterator, List

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import cnitest  # noqa: E402
from attachrun import NodeDirs, ProbeNames  # noqa: E402
from cnitest import NetNS  # noqa: E402

GO_PLUGIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
NODE_PYTHON = "/usr/bin/python3"  # the node's own interpreter, not the venv's


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests need root (network namespaces)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cni_bin(tmp_path_factory) -> str:
    """Our plugins installed by the same code cni_plugin uses, under prefixed
    and reference names, running on the node's python3."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

    bin_dir = str(tmp_path_factory.mktemp("cnibin"))
    names = installer.plugin_names(list(installer.PLUGINS), installer.DEFAULT_PREFIX, reference_names=True, agent=True)
    installer.install_local(bin_dir, names, NODE_PYTHON if os.path.exists(NODE_PYTHON) else sys.executable)
    cnitest.AGENT_BIN = os.path.join(bin_dir, "nodenet-agent")
    return bin_dir


@pytest.fixture(scope="session")
def go_bin() -> str:
    if not os.path.isfile(os.path.join(GO_PLUGIN_DIR, "bridge")):
        pytest.skip("Go reference plugins not installed (apt containernetworking-plugins)")
    return GO_PLUGIN_DIR


@pytest.fixture
def mixed_bin(tmp_path, cni_bin, go_bin) -> Callable[[Dict[str, str]], str]:
    """A bin dir assembling chosen implementations: {"bridge": "go", "host-local": "py"}."""

    def make(choice: Dict[str, str]) -> str:
        d = tmp_path / ("mixed-" + "-".join("%s_%s" % kv for kv in sorted(choice.items())))
        d.mkdir()
        for name, impl in choice.items():
            # our launcher refers to its runtime by absolute path, so a copy works
            shutil.copy(os.path.join(go_bin if impl == "go" else cni_bin, name), d / name)
        return str(d)

    return make


@pytest.fixture
def netns_factory() -> Callable[[str], NetNS]:
    made: List[NetNS] = []

    def make(tag: str) -> NetNS:
        ns = NetNS(tag)
        made.append(ns)
        return ns

    yield make
    failures = []
    for ns in reversed(made):
        try:
            ns.delete()
        except AssertionError as e:  # delete every namespace first
            failures.append(str(e))
    assert not failures, "\n".join(failures)


@pytest.fixture
def host_ns(netns_factory) -> NetNS:
    """The "node": plugins run here, bridges and veth host ends live here."""
    return netns_factory("host")


@pytest.fixture
def container_ns(netns_factory) -> NetNS:
    return netns_factory("ctr")


@pytest.fixture
def data_dir(tmp_path) -> str:
    d = tmp_path / "ipam"
    d.mkdir()
    return str(d)


# cni_attach / cni_facts run through `ansible` on a test namespace "node"


@pytest.fixture
def probes() -> Iterator[ProbeNames]:
    """Probe namespace names for cni_attach; each is deleted by exact name at the end."""
    names = ProbeNames()
    yield names
    names.cleanup()


@pytest.fixture
def dirs(tmp_path, cni_bin) -> NodeDirs:
    """A node's conf dir, cache dir and dataDir under tmp_path (test_cni_netconf has its own)."""
    return NodeDirs(str(tmp_path / "node"), [cni_bin])
