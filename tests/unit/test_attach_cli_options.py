# SPDX-License-Identifier: GPL-3.0-or-later
"""The probe's entry point (cni/node/attach_cli.py) takes exactly cni_attach's options with its
defaults: an option added to the module but not there would be refused by the probe, or taken
with another default."""

from __future__ import annotations

from ansible_collections.nodenet.cni.plugins.module_utils import node_libs
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import attach_cli
from ansible_collections.nodenet.cni.plugins.modules import cni_attach


def test_the_entry_point_knows_every_option_of_the_module_with_its_default():
    spec = dict(cni_attach.ARGUMENT_SPEC)
    spec["bin_dir"] = {"default": list(node_libs.DEFAULT_BIN_DIRS)}  # node_libs.node_module adds it
    assert set(attach_cli.OPTIONS) == set(spec)
    for name, option in spec.items():
        assert attach_cli.OPTIONS[name][1] == option.get("default"), name
    assert attach_cli.STATES == tuple(spec["state"]["choices"])
