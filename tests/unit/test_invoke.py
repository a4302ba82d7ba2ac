# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one plugin-exec path (invoke.exec_plugin): IPAM delegation and the
runtime chain retry a busy binary alike and word a failure alike."""

import os
import threading

import pytest

from ansible_collections.nodenet.cni.plugins.module_utils.cni import invoke
from ansible_collections.nodenet.cni.plugins.module_utils.cni.runtime.pluginexec import PluginExec
from ansible_collections.nodenet.cni.plugins.module_utils.cni.spec import CNIError

ENV = {"PATH": "/usr/bin:/bin", "CNI_COMMAND": "ADD"}


def _plugin(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_a_binary_being_written_is_retried_until_it_can_run(tmp_path):
    path = _plugin(tmp_path, "busy", 'echo \'{"cniVersion": "1.0.0"}\'\n')
    writer = os.open(path, os.O_WRONLY)  # exec now fails with ETXTBSY
    closer = threading.Timer(1.5, os.close, (writer,))
    closer.start()
    try:
        rec = invoke.exec_plugin(path, ENV, b"{}", timeout=30)
    finally:
        closer.join()
    assert rec.cni_error is None, rec.error
    assert rec.exit_code == 0
    assert rec.stdout.strip() == '{"cniVersion": "1.0.0"}'


def test_a_binary_busy_for_good_fails_after_six_tries(tmp_path, monkeypatch):
    path = _plugin(tmp_path, "busy", "exit 0\n")
    sleeps = []
    monkeypatch.setattr(invoke.time, "sleep", sleeps.append)
    writer = os.open(path, os.O_WRONLY)
    try:
        rec = invoke.exec_plugin(path, ENV, b"{}", timeout=30)
    finally:
        os.close(writer)
    assert sleeps == [1] * (invoke.EXEC_TRIES - 1) and invoke.EXEC_TRIES == 6  # libcni RawExec
    assert rec.error == "netplugin failed with no error message: fork/exec %s: Text file busy" % path


@pytest.mark.parametrize(
    "body, msg",
    [
        ('echo "about to fail" >&2; exit 3\n', 'netplugin failed: "about to fail\\n": exit status 3'),
        ("exit 4\n", "netplugin failed with no error message: exit status 4"),
        ("echo 'not json'; exit 1\n", 'netplugin failed but error parsing its diagnostic message "not json"'),
        ('echo \'{"code": 11, "msg": "busy", "details": "later"}\'; exit 1\n', "busy"),
    ],
)
def test_delegation_and_the_runtime_word_a_failure_alike(tmp_path, body, msg):
    path = _plugin(tmp_path, "fails", body)
    with pytest.raises(CNIError) as delegated:
        invoke.delegate("ADD", "fails", b'{"type": "bridge"}', dict(ENV, CNI_PATH=str(tmp_path)))
    pe = PluginExec([str(tmp_path)], env={"PATH": "/usr/bin:/bin"})
    rec = pe.run(path, pe.environment("ADD", "c1", "", "eth0"), b"{}")
    assert delegated.value.msg == rec.cni_error.msg == msg
    assert delegated.value.code == rec.cni_error.code


def test_a_plugin_that_cannot_be_execd_is_a_record_not_an_exception(tmp_path):
    missing = str(tmp_path / "gone")
    rec = invoke.exec_plugin(missing, ENV, b"{}", prefix=["/nonexistent-prefix"])
    assert rec.argv == ["/nonexistent-prefix", missing]
    assert rec.cni_error is not None and rec.cni_error.code == 999
    assert rec.as_dict()["error"] == "netplugin failed with no error message: fork/exec /nonexistent-prefix: No such file or directory"
