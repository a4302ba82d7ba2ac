# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cni_plugin's install from the bundle on stdin (module_utils/install_boot.py),
run exactly as its action plugin runs it on a node: the node's python3 with
-B -I -S, install_boot's LOADER on the command line, the boot code, the
request and the bundle on stdin. Each bin dir is a pytest tmp dir.

A damaged transfer never installs anything: what gzip's CRC catches makes the
boot code hand over to the module (which reports it in its own words), what
only the digest catches fails naming `src` or `digest`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from typing import Any, Dict, Tuple

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.nodenet.cni.plugins.module_utils import install_boot
from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import install_cli, installer

NODE_PYTHON = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(not os.path.exists(NODE_PYTHON), reason="no node python3")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Tuple[bytes, str]:
    files = installer.collect_sources()
    path = str(tmp_path_factory.mktemp("bundle") / "bundle.tar.gz")
    digest = installer.write_bundle(files, path, pycs=installer.compile_sources(files))
    with open(path, "rb") as f:
        return f.read(), digest


def request(bin_dir: str, digest: str, **extra: Any) -> Dict[str, Any]:
    params = ArgumentSpecValidator(install_cli.ARGUMENT_SPEC).validate({"bin_dir": [bin_dir], "digest": digest}).validated_parameters
    return dict({"protocol": install_cli.PROTOCOL, "params": params, "diff": False}, **extra)


def boot(req: Dict[str, Any], data: bytes) -> Tuple[int, Dict[str, Any], str]:
    with open(install_boot.__file__, "rb") as f:
        code = f.read()
    stdin = b"%d\n" % len(code) + code + json.dumps(req).encode() + b"\n" + data
    done = subprocess.run([NODE_PYTHON, "-B", "-I", "-S", "-c", install_boot.LOADER], input=stdin, capture_output=True, timeout=120, check=False,
                          cwd="/")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = {}
    return done.returncode, answer, done.stderr.decode(errors="replace")


def rebuilt(data: bytes, change) -> bytes:
    """The bundle with `change(name, bytes) -> bytes` applied to its members, as a valid tar.gz."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src:
            content = change(member.name, src.extractfile(member).read())  # type: ignore[union-attr]
            member.size = len(content)
            dst.addfile(member, io.BytesIO(content))
    return out.getvalue()


def test_the_bundle_installs_with_its_own_installer(tmp_path, bundle):
    data, digest = bundle
    bin_dir = str(tmp_path / "bin")
    rc, answer, stderr = boot(request(bin_dir, digest), data)
    assert rc == 0, stderr
    result = answer["result"]
    assert result["changed"] and not result.get("failed"), result
    assert result["bytecode"] == "bundled" and result["runtime_dir"] == os.path.join(bin_dir, ".nodenet-cni", digest[:16])
    assert installer.runtime_problems(result["runtime_dir"], installer.collect_sources()) == []
    assert sorted(os.listdir(bin_dir)) == [".nodenet-cni", "nodenet-agent", "nodenet-bridge", "nodenet-host-local", "nodenet-loopback", "nodenet-portmap"]
    # the same request again: nothing to do
    rc, answer, stderr = boot(request(bin_dir, digest), data)
    assert rc == 0 and answer["result"]["changed"] is False, (answer, stderr)


def test_a_changed_source_in_the_bundle_fails_its_digest_and_writes_nothing(tmp_path, bundle):
    data, digest = bundle
    damaged = rebuilt(data, lambda name, content: content + b"# changed\n" if name == "nodenet_cni/skel.py" else content)
    bin_dir = tmp_path / "bin"
    rc, answer, stderr = boot(request(str(bin_dir), digest), damaged)
    assert rc == 0, stderr
    assert answer["result"]["failed"] and answer["result"]["msg"].startswith("src: cannot read the plugin bundle"), answer
    assert "digest mismatch" in answer["result"]["msg"]
    assert not bin_dir.exists()


def test_a_bundle_of_another_digest_than_requested_fails_naming_digest(tmp_path, bundle):
    data, digest = bundle
    bin_dir = tmp_path / "bin"
    rc, answer, stderr = boot(request(str(bin_dir), "0" * 64), data)
    assert rc == 0, stderr
    assert answer["result"]["failed"] and answer["result"]["msg"].startswith("digest: the bundle in src has digest %s" % digest), answer
    assert not bin_dir.exists()


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_a_damaged_transfer_hands_over_to_the_module(tmp_path, bundle, damage):
    data, digest = bundle
    if damage == "truncated":
        bad = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        bad = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
    bin_dir = tmp_path / "bin"
    rc, answer, stderr = boot(request(str(bin_dir), digest), bad)
    assert rc == install_boot.FALLBACK_RC, (answer, stderr)
    assert "cannot be read" in answer["nodenet_cni_fallback"]
    assert not bin_dir.exists()


def test_a_request_of_another_protocol_hands_over_to_the_module(tmp_path, bundle):
    data, digest = bundle
    bin_dir = tmp_path / "bin"
    rc, answer, _stderr = boot(request(str(bin_dir), digest, protocol=install_cli.PROTOCOL + 1), data)
    assert rc == install_boot.FALLBACK_RC and "protocol" in answer["nodenet_cni_fallback"]
    assert not bin_dir.exists()


def test_the_boot_code_runs_nothing_from_the_node(tmp_path, bundle):
    """Only the bundle's modules are imported as nodenet_cni (no runtime on the node's path,
    -I -S: no site, no PYTHONPATH), from the controller's pyc of their very source where the
    node's Python loads it."""
    data, _digest = bundle
    with open(str(tmp_path / "b.tar.gz"), "wb") as f:
        f.write(data)
    probe = (
        "import sys, json; g = {'__name__': 'probe'}; exec(compile(open(%r, 'rb').read(), 'boot', 'exec'), g); "
        "imp = g['BundleImporter'](g['bundle_members'](open(%r, 'rb').read())); "
        "sys.meta_path.insert(0, imp); from nodenet_cni.node import install_cli; "
        "mods = [m for m in sys.modules if m.split('.')[0] == 'nodenet_cni']; "
        "print(json.dumps({'file': install_cli.__file__, 'ours': all(sys.modules[m].__spec__.loader is imp for m in mods), "
        "'code': install_cli.install.__code__.co_filename, 'tag': sys.implementation.cache_tag}))"
    ) % (install_boot.__file__, str(tmp_path / "b.tar.gz"))
    done = subprocess.run([NODE_PYTHON, "-B", "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60, check=False, cwd="/")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["file"] == "<plugin bundle>/nodenet_cni/node/install_cli.py" and seen["ours"], seen
    import sys

    if seen["tag"] == sys.implementation.cache_tag:
        assert seen["code"] == "nodenet_cni/node/install_cli.py", "compiled on the node, not the controller's pyc"
    else:
        assert seen["code"] == seen["file"]
