# SPDX-License-Identifier: GPL-3.0-or-later
"""A runtime reaches the disk before it is renamed into place: one syncfs(2) for its
~750 files where libc has it, else an fsync of every file and directory."""

from __future__ import annotations

import os
import sys

from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

FILES = {
    "nodenet_cni/__init__.py": b"",
    "nodenet_cni/plugin/__init__.py": b"",
    "nodenet_cni/plugin/loopback.py": b"VALUE = 1\n",
    "pyroute2/__init__.py": b"# stand-in\n",
}
DIGEST = "fedcba9876543210" * 4


def counting(monkeypatch):
    """Count os.fsync and installer._syncfs calls (both still do their work)."""
    calls = {"fsync": 0, "syncfs": 0}
    real_fsync, real_syncfs = os.fsync, installer._syncfs

    def fsync(fd):
        calls["fsync"] += 1
        return real_fsync(fd)

    def syncfs(path):
        calls["syncfs"] += 1
        return real_syncfs(path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(installer, "_syncfs", syncfs)
    return calls


def test_one_syncfs_instead_of_an_fsync_per_file(tmp_path, monkeypatch):
    calls = counting(monkeypatch)
    rdir = installer.unpack_runtime(str(tmp_path / "lib"), DIGEST, FILES, sys.executable)
    assert calls["syncfs"] == 1
    assert calls["fsync"] == 1, "only the lib dir's entry is fsync'd after the rename"
    assert installer.runtime_problems(rdir, FILES) == []


def test_without_syncfs_every_file_and_directory_is_fsynced(tmp_path, monkeypatch):
    calls = counting(monkeypatch)

    def no_syncfs(path):
        calls["syncfs"] += 1
        return False

    monkeypatch.setattr(installer, "_syncfs", no_syncfs)
    rdir = installer.unpack_runtime(str(tmp_path / "lib"), DIGEST, FILES, sys.executable)
    entries = sum(len(dirs) + len(names) for _root, dirs, names in os.walk(rdir)) + 1  # + the runtime dir itself
    assert calls["syncfs"] == 1
    assert calls["fsync"] >= entries, "%d fsyncs for %d files and directories" % (calls["fsync"], entries)
    assert installer.runtime_problems(rdir, FILES) == []


def test_the_manifest_hashes_are_the_files_hashes(tmp_path):
    """The hashes come from the data written, not from reading the files back: they must
    still be what is on disk (the compiled pycs are hashed from disk)."""
    rdir = installer.unpack_runtime(str(tmp_path / "lib"), DIGEST, FILES, sys.executable)
    manifest = installer._manifest(rdir)
    assert manifest is not None
    for rel, digest in manifest["sha256"].items():
        assert installer._sha256_file(os.path.join(rdir, rel)) == digest, rel
    assert any(rel.endswith(".pyc") for rel in manifest["sha256"]), "compiled on the node: pycs sealed too"
