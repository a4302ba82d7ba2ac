# SPDX-License-Identifier: GPL-3.0-or-later
"""nodenet.cni.cni_plugin through the real `ansible` CLI, from the repo root.

Nothing here sets ANSIBLE_* variables: the repository's ansible.cfg must be
enough for both the FQCN and the short name (`-m cni_plugin`), exactly as a
user runs it after `make setup`. Every bin dir is a pytest tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from typing import Any, Dict, List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(ROOT, ".venv", "bin", "ansible")
if not os.path.exists(ANSIBLE):
    ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
NODE_PYTHON = "/usr/bin/python3"
CANONICAL = ["bridge", "host-local", "loopback", "portmap"]
PREFIXED = ["nodenet-" + p for p in CANONICAL]
AGENT = "nodenet-agent"
RESULT_RE = re.compile(r"^localhost \| (CHANGED|SUCCESS|FAILED!|UNREACHABLE!)(?: \| rc=-?\d+)? => ", re.M)


class Run:
    """One ad-hoc run: the module's result dict plus what was printed."""

    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        match = RESULT_RE.search(proc.stdout)
        if not match:
            raise AssertionError("no result from ansible (rc=%d)\nstdout=%s\nstderr=%s" % (self.rc, self.stdout, self.stderr))
        self.status = match.group(1)
        self.result: Dict[str, Any] = json.JSONDecoder().raw_decode(proc.stdout[match.end():])[0]

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def failed(self) -> bool:
        return self.status.startswith("FAILED")

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))

    def ok(self) -> "Run":
        assert not self.failed and self.rc == 0, "module failed: %s\n%s" % (self.msg, self.stderr)
        return self


def ansible(args: Dict[str, Any], module: str = "nodenet.cni.cni_plugin", check: bool = False, diff: bool = False) -> Run:
    argv = [ANSIBLE, "localhost", "-m", module, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return Run(proc)


def listing(directory) -> List[str]:
    """Every path under directory (relative), so "nothing else was written" is checkable."""
    out = []
    for dirpath, dirnames, filenames in os.walk(str(directory)):
        for name in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), str(directory)))
    return sorted(out)


def launchers(bin_dir) -> List[str]:
    return sorted(n for n in os.listdir(str(bin_dir)) if not n.startswith("."))


def shim_python(path) -> str:
    """The interpreter a shim runs the plugin on when no agent answers."""
    match = re.search(r"^# Python (\S+); agent ", open(str(path)).read(), re.M)
    assert match, "not a nodenet shim: %s" % path
    return match.group(1)


def foreign_plugin(path) -> bytes:
    """Something a runtime might already have there: the Go plugin if installed."""
    go = "/usr/lib/cni/bridge"
    data = open(go, "rb").read() if os.path.exists(go) else b"#!/bin/sh\necho a go plugin\n"
    with open(str(path), "wb") as f:
        f.write(data)
    os.chmod(str(path), 0o755)
    return data


def changed_lines(stdout: str) -> List[str]:
    return [line for line in stdout.splitlines() if line[:1] in ("+", "-") and not line.startswith(("---", "+++"))]


def exec_launcher(path: str, env: Dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([path], input=stdin, env=dict({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, **env), capture_output=True, timeout=60, check=False)


@pytest.fixture
def bin_dir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One install on the node's python3, shared by the exec tests."""
    d = tmp_path_factory.mktemp("installed")
    ansible({"bin_dir": str(d)}).ok()
    return d


def test_first_run_installs_prefixed_launchers_and_second_run_changes_nothing(bin_dir):
    first = ansible({"bin_dir": str(bin_dir)}).ok()
    assert first.changed
    assert launchers(bin_dir) == sorted(PREFIXED + [AGENT])
    res = first.result
    assert res["agent"] == str(bin_dir / AGENT)
    assert res["plugins"] == {n: {"plugin": c, "path": str(bin_dir / n)} for n, c in zip(PREFIXED, CANONICAL)}
    assert res["runtime_dir"] == str(bin_dir / ".nodenet-cni" / res["digest"][:16])
    assert os.listdir(str(bin_dir / ".nodenet-cni")) == [res["digest"][:16]]
    for name in PREFIXED:
        assert stat.S_IMODE(os.stat(str(bin_dir / name)).st_mode) == 0o755
        assert shim_python(bin_dir / name) == NODE_PYTHON
    before = listing(bin_dir)

    second = ansible({"bin_dir": str(bin_dir)}).ok()
    assert not second.changed
    assert second.result["digest"] == res["digest"]
    assert listing(bin_dir) == before


def test_check_mode_predicts_change_and_writes_nothing(bin_dir):
    target = bin_dir / "new"  # does not exist yet: check mode must not create it
    predicted = ansible({"bin_dir": str(target)}, check=True).ok()
    assert predicted.changed
    assert not target.exists()

    ansible({"bin_dir": str(target)}).ok()
    state = listing(target)
    assert not ansible({"bin_dir": str(target)}, check=True).ok().changed
    more = ansible({"bin_dir": str(target), "reference_names": True}, check=True).ok()
    assert more.changed
    assert listing(target) == state
    gone = ansible({"bin_dir": str(target), "state": "absent"}, check=True).ok()
    assert gone.changed and gone.result["removed"] == [str(target / n) for n in sorted(PREFIXED + [AGENT])]
    assert listing(target) == state


def test_diff_shows_launchers_and_runtime_before_and_after(bin_dir):
    run = ansible({"bin_dir": str(bin_dir), "plugins": ["loopback", "bridge"]}, diff=True).ok()
    digest16 = run.result["digest"][:16]
    # what the user sees: a unified diff of the readable state, headed by the bin dir
    assert "--- before: %s (before)\n+++ after: %s (after)\n" % (bin_dir, bin_dir) in run.stdout
    assert changed_lines(run.stdout) == [
        "-  (none)",
        "+  nodenet-agent: node agent, runtime %s, on %s" % (digest16, NODE_PYTHON),
        "+  nodenet-bridge: bridge plugin, runtime %s, on %s" % (digest16, NODE_PYTHON),
        "+  nodenet-loopback: loopback plugin, runtime %s, on %s" % (digest16, NODE_PYTHON),
        "-  (none)",
        "+  " + digest16,
    ]

    again = ansible({"bin_dir": str(bin_dir), "plugins": ["loopback", "bridge"], "reference_names": True}, diff=True, check=True).ok()
    assert changed_lines(again.stdout) == [
        "+  bridge: bridge plugin, runtime %s, on %s" % (digest16, NODE_PYTHON),
        "+  loopback: loopback plugin, runtime %s, on %s" % (digest16, NODE_PYTHON),
    ]


def test_reference_names_refuse_to_overwrite_a_foreign_plugin(bin_dir):
    go = foreign_plugin(bin_dir / "bridge")
    before = listing(bin_dir)
    run = ansible({"bin_dir": str(bin_dir), "reference_names": True})
    assert run.failed and run.rc != 0
    assert "reference_names" in run.msg and "force" in run.msg and str(bin_dir / "bridge") in run.msg
    assert run.result["conflicts"] == [str(bin_dir / "bridge")]
    assert listing(bin_dir) == before  # refused before writing anything
    assert open(str(bin_dir / "bridge"), "rb").read() == go
    # in check mode too
    assert ansible({"bin_dir": str(bin_dir), "reference_names": True}, check=True).failed


def test_force_replaces_a_foreign_plugin(bin_dir):
    foreign_plugin(bin_dir / "bridge")
    run = ansible({"bin_dir": str(bin_dir), "reference_names": True, "force": True}, diff=True).ok()
    assert run.changed
    assert "-  bridge: (a file not managed by nodenet.cni)" in run.stdout
    assert launchers(bin_dir) == sorted(CANONICAL + PREFIXED + [AGENT])
    assert "nodenet.cni" in open(str(bin_dir / "bridge")).read()
    assert not ansible({"bin_dir": str(bin_dir), "reference_names": True}).ok().changed


def test_prefixed_names_never_touch_the_reference_names(bin_dir):
    go = foreign_plugin(bin_dir / "bridge")
    ansible({"bin_dir": str(bin_dir)}).ok()
    assert open(str(bin_dir / "bridge"), "rb").read() == go


def test_state_absent_removes_exactly_what_it_made(bin_dir):
    go = foreign_plugin(bin_dir / "bridge")
    (bin_dir / "other").write_text("not ours\n")
    before = listing(bin_dir)
    ansible({"bin_dir": str(bin_dir), "reference_names": True, "force": False, "plugins": ["loopback", "portmap"]}).ok()
    ansible({"bin_dir": str(bin_dir)}).ok()
    assert listing(bin_dir) != before

    gone = ansible({"bin_dir": str(bin_dir), "reference_names": True, "state": "absent"}, diff=True).ok()
    assert gone.changed
    assert listing(bin_dir) == before
    assert open(str(bin_dir / "bridge"), "rb").read() == go
    assert "-  nodenet-bridge: bridge plugin" in gone.stdout
    assert not ansible({"bin_dir": str(bin_dir), "reference_names": True, "state": "absent"}).ok().changed


def test_absent_keeps_a_runtime_other_launchers_still_use(bin_dir):
    ansible({"bin_dir": str(bin_dir), "prefix": "a-"}).ok()
    ansible({"bin_dir": str(bin_dir), "prefix": "b-"}).ok()
    ansible({"bin_dir": str(bin_dir), "prefix": "a-", "state": "absent"}).ok()
    assert launchers(bin_dir) == sorted(["b-" + p for p in CANONICAL] + ["b-agent"])
    run = exec_launcher(str(bin_dir / "b-loopback"), {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    assert run.returncode == 0, run.stdout


def test_repairs_a_launcher_mode_and_drops_an_unused_runtime(bin_dir):
    ansible({"bin_dir": str(bin_dir)}).ok()
    os.chmod(str(bin_dir / "nodenet-bridge"), 0o644)
    stale = bin_dir / ".nodenet-cni" / "0123456789abcdef"
    stale.mkdir()
    (stale / "MANIFEST.json").write_text('{"digest": "0123456789abcdef", "files": []}')
    run = ansible({"bin_dir": str(bin_dir)}, diff=True).ok()
    assert run.changed
    assert "mode 0644 (want 0755)" in run.stdout and "-  0123456789abcdef" in run.stdout
    assert stat.S_IMODE(os.stat(str(bin_dir / "nodenet-bridge")).st_mode) == 0o755
    assert not stale.exists()
    assert not ansible({"bin_dir": str(bin_dir)}).ok().changed


def test_changing_the_interpreter_rewrites_the_launchers(bin_dir):
    ansible({"bin_dir": str(bin_dir), "plugins": ["loopback"]}).ok()
    run = ansible({"bin_dir": str(bin_dir), "plugins": ["loopback"], "interpreter": sys.executable}).ok()
    assert run.changed
    assert shim_python(bin_dir / "nodenet-loopback") == sys.executable


def too_old_python(tmp_path) -> str:
    fake = tmp_path / "python3.8"
    fake.write_text("#!/bin/sh\necho 3.8.18\n")
    fake.chmod(0o755)
    return str(fake)


@pytest.mark.parametrize(
    "args, option, words",
    [
        ({"plugins": ["bridge", "flannel"]}, "plugins", "flannel"),
        ({"state": "installed"}, "state", "installed"),
        ({"interpreter": "/nonexistent/python3"}, "interpreter", "does not exist"),
        ({"interpreter": "/bin/true"}, "interpreter", "not a working Python"),
        ({"interpreter": too_old_python}, "interpreter", "3.9 or newer"),
        ({"prefix": "a/b"}, "prefix", "letters"),
        ({"prefix": ""}, "prefix", "reference_names"),
        ({"bin_dir": "relative/bin"}, "bin_dir", "absolute"),
        ({"lib_dir": "relative/lib"}, "lib_dir", "absolute"),
        ({"reference_names": "perhaps"}, "reference_names", "perhaps"),
        ({"digest": "0" * 64}, "digest", "action plugin"),
    ],
)
def test_bad_option_values_fail_naming_the_option(bin_dir, tmp_path, args, option, words):
    args = {k: (v(tmp_path) if callable(v) else v) for k, v in args.items()}
    run = ansible(dict({"bin_dir": str(bin_dir)}, **args))
    assert run.failed and run.rc != 0
    assert option in run.msg and words in run.msg, run.msg
    assert listing(bin_dir) == []


def test_installed_loopback_answers_version_on_the_node_python(installed):
    launcher = str(installed / "nodenet-loopback")
    assert shim_python(launcher) == NODE_PYTHON
    run = exec_launcher(launcher, {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    assert run.returncode == 0, run.stderr
    reply = json.loads(run.stdout)
    assert reply["cniVersion"] == "1.0.0"
    assert reply["supportedVersions"] == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@pytest.mark.parametrize("name", PREFIXED)
def test_no_cni_command_prints_the_about_text_to_stderr(installed, name):
    run = exec_launcher(str(installed / name), {})
    assert run.returncode == 0
    assert run.stdout == b""
    about = run.stderr.decode()
    assert about.startswith("CNI %s plugin (nodenet.cni) v" % name[len("nodenet-"):])
    assert "CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0" in about


def test_short_name_works_from_the_repository_root(bin_dir):
    run = ansible({"bin_dir": str(bin_dir), "plugins": ["loopback"]}, module="cni_plugin").ok()
    assert run.changed and launchers(bin_dir) == [AGENT, "nodenet-loopback"]
    assert not ansible({"bin_dir": str(bin_dir), "plugins": ["loopback"]}, module="nodenet.cni.cni_plugin").ok().changed


def test_src_is_not_a_user_option(bin_dir, tmp_path):
    run = ansible({"bin_dir": str(bin_dir), "src": str(tmp_path / "bundle.tar.gz")})
    assert run.failed and "src" in run.msg and "action plugin" in run.msg


def test_bin_dir_is_a_list_like_every_modules_and_installs_into_the_first(bin_dir, tmp_path):
    # one module_defaults value (group/nodenet.cni.cni) serves cni_plugin, cni_attach, cni_facts ...
    other = tmp_path / "other"
    other.mkdir()
    assert ansible({"bin_dir": [str(bin_dir), str(other)]}).ok().changed
    assert launchers(bin_dir) == sorted(PREFIXED + [AGENT]) and launchers(other) == []
    assert not ansible({"bin_dir": str(bin_dir)}).ok().changed, "a single path still means the same directory"


def test_a_node_without_the_runtime_gets_the_bundle_without_a_module_run(bin_dir):
    """No module run and no file transfer for an install: the action plugin's shell look at
    the node finds no MANIFEST of this runtime, so the bundle goes along at once on the stdin
    of one python3 that installs it with the bundle's own installer (install_boot); an
    up-to-date node gets no module run and no bundle (the look proves it current)."""
    out, runs, puts, boots = run_counted(bin_dir)
    assert "CHANGED" in out and (runs, puts, boots) == (0, 0, 1), out[-3000:]
    assert '"bytecode": "bundled"' in out, out[-3000:]
    out, runs, puts, boots = run_counted(bin_dir)
    assert "SUCCESS" in out and (runs, puts, boots) == (0, 0, 0), out[-3000:]
    # a damaged runtime (MANIFEST there, a file altered): the look cannot prove it current, the
    # module (without the bundle) finds it damaged, the bundle comes on stdin, the runtime is repaired
    rdir = [os.path.join(str(bin_dir), ".nodenet-cni", d) for d in os.listdir(os.path.join(str(bin_dir), ".nodenet-cni")) if not d.startswith(".")][0]
    target = os.path.join(rdir, "nodenet_cni", "skel.py")
    os.chmod(target, 0o644)
    with open(target, "a") as f:
        f.write("# altered\n")
    out, runs, puts, boots = run_counted(bin_dir)
    assert "CHANGED" in out and (runs, puts, boots) == (1, 0, 1), out[-3000:]
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

    assert installer.runtime_problems(rdir, installer.collect_sources()) == []


def run_counted(bin_dir, args: Any = None, extra: Any = ()):
    """One -vvv ad-hoc run: (stdout, module runs on the node, bundle transfers, installs from the bundle on stdin)."""
    argv = [ANSIBLE, "localhost", "-m", "nodenet.cni.cni_plugin", "-a", json.dumps(args or {"bin_dir": [str(bin_dir)]}), "-vvv", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    module_runs = [line for line in lines if "EXEC" in line and "AnsiballZ_cni_plugin" in line and "chmod" not in line and "rm -f" not in line]
    bundle_puts = [line for line in lines if "PUT" in line and "nodenet-cni-bundle" in line]
    boots = [line for line in lines if "EXEC" in line and "nodenet-cni-install-boot" in line]
    return proc.stdout, len(module_runs), len(bundle_puts), len(boots)


def _runtime(bin_dir) -> str:
    lib = os.path.join(str(bin_dir), ".nodenet-cni")
    return [os.path.join(lib, d) for d in os.listdir(lib) if not d.startswith(".")][0]


def _append(path: str) -> None:
    os.chmod(path, 0o644)
    with open(path, "a") as f:
        f.write("# drifted\n")


def _stale_runtime(bin_dir) -> None:
    stale = os.path.join(str(bin_dir), ".nodenet-cni", "0123456789abcdef")
    os.mkdir(stale)
    with open(os.path.join(stale, "MANIFEST.json"), "w") as f:
        f.write('{"digest": "0123456789abcdef", "files": []}')


DRIFTS = {
    "runtime file modified": lambda b: _append(os.path.join(_runtime(b), "nodenet_cni", "skel.py")),
    "runtime pyc modified": lambda b: _append(
        [os.path.join(dp, n) for dp, _d, ns in os.walk(_runtime(b)) for n in ns if n.endswith(".pyc")][0]),
    "runtime file mode": lambda b: os.chmod(os.path.join(_runtime(b), "nodenet_cni", "skel.py"), 0o666),
    "runtime dir mode": lambda b: os.chmod(os.path.join(_runtime(b), "nodenet_cni"), 0o775),
    "runtime file removed": lambda b: os.unlink(os.path.join(_runtime(b), "nodenet_cni", "skel.py")),
    "file added to the runtime": lambda b: open(os.path.join(_runtime(b), "nodenet_cni", "extra.py"), "w").close(),
    "a stale runtime beside it": _stale_runtime,
    "launcher edited": lambda b: _append(str(b / "nodenet-bridge")),
    "launcher mode": lambda b: os.chmod(str(b / "nodenet-loopback"), 0o700),
    "launcher removed": lambda b: os.unlink(str(b / "nodenet-agent")),
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_a_drifted_node_is_never_taken_for_current(bin_dir, drift):
    """The action plugin skips the module run only when its shell look proves the node
    current: each drift here must still reach the module, which repairs it and
    reports changed; the next run is current again, without a module run."""
    assert run_counted(bin_dir)[1:] == (0, 0, 1)
    assert run_counted(bin_dir)[1:] == (0, 0, 0)
    DRIFTS[drift](bin_dir)
    out, runs, _puts, boots = run_counted(bin_dir)
    assert "CHANGED" in out and runs + boots >= 1, out[-3000:]
    out, runs, puts, boots = run_counted(bin_dir)
    assert "SUCCESS" in out and (runs, puts, boots) == (0, 0, 0), out[-3000:]


def test_the_node_uses_the_controllers_bytecode_and_the_runtime_stays_sealed(bin_dir):
    """The node python3 is the controller's Python version here: the pycs the controller
    compiled into the bundle are installed as they are (no compileall on the node), the
    runtime verifies against its MANIFEST, a plugin exec writes nothing into it, and a
    re-run neither reinstalls nor reports a change."""
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

    if installer.interpreter_info(NODE_PYTHON)["cache_tag"] != sys.implementation.cache_tag:
        pytest.skip("the node python3 is not the controller's Python version")
    first = ansible({"bin_dir": [str(bin_dir)]}).ok()
    assert first.changed and first.result["bytecode"] == "bundled"
    rdir = first.result["runtime_dir"]
    assert installer.runtime_problems(rdir, installer.collect_sources()) == []
    skel_pyc = os.path.join(rdir, installer.pyc_path("nodenet_cni/skel.py", sys.implementation.cache_tag))
    with open(skel_pyc, "rb") as f:
        assert int.from_bytes(f.read(8)[4:8], "little") == installer.PYC_UNCHECKED_HASH, "not the controller's hash-based pyc"
    before = listing(bin_dir)
    done = exec_launcher(str(bin_dir / "nodenet-loopback"), {"CNI_COMMAND": "VERSION"})
    assert done.returncode == 0 and b"cniVersion" in done.stdout, done.stderr
    assert listing(bin_dir) == before and installer.runtime_problems(rdir) == []
    second = ansible({"bin_dir": [str(bin_dir)]}).ok()
    assert not second.changed and "bytecode" not in second.result and second.result["digest"] == first.result["digest"]


def _without_paths(result: Dict[str, Any], *dirs: str) -> str:
    text = json.dumps({k: v for k, v in result.items() if k != "invocation"}, sort_keys=True)
    for d in dirs:
        text = text.replace(d, "<bin_dir>")
    return text


def test_the_install_from_stdin_gives_the_modules_result_changes_and_diff(tmp_path):
    """The same install two ways: from the bundle on stdin (a plain bin_dir) and through the
    module with the bundle transferred (a bin_dir under ~, which only the node may expand, so
    the action runs the module). Same result, same diff, same files, both sealed."""
    home = tmp_path / "home"
    home.mkdir()
    direct = tmp_path / "direct"
    out_a, runs_a, puts_a, boots_a = run_counted(direct, {"bin_dir": [str(direct)]}, extra=("--diff",))
    argv_env = dict(os.environ, HOME=str(home))
    argv = [ANSIBLE, "localhost", "-m", "nodenet.cni.cni_plugin", "-a", json.dumps({"bin_dir": ["~/bin"]}), "-vvv", "--diff"]
    env = {k: v for k, v in argv_env.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert not [line for line in lines if "EXEC" in line and "nodenet-cni-install-boot" in line], "a ~ path went to the node unexpanded"
    assert [line for line in lines if "EXEC" in line and "AnsiballZ_cni_plugin" in line and "chmod" not in line and "rm -f" not in line]
    # (under --diff the module looks first, without the bundle: it shows the installed state)
    assert (runs_a, puts_a, boots_a) == (1, 0, 1), out_a[-3000:]
    via_boot, via_module = Run(subprocess.CompletedProcess([], 0, out_a, "")), Run(proc)
    assert via_boot.changed and via_module.changed
    assert _without_paths(via_boot.result, str(direct)) == _without_paths(via_module.result, str(home / "bin"))
    assert changed_lines(out_a) == [line.replace(str(home / "bin"), str(direct)) for line in changed_lines(proc.stdout)]
    assert listing(direct) == listing(home / "bin")
    from ansible_collections.nodenet.cni.plugins.module_utils.cni.node import installer

    for d in (direct, home / "bin"):
        rdir = os.path.join(str(d), ".nodenet-cni", via_boot.result["digest"][:16])
        assert installer.runtime_problems(rdir, installer.collect_sources()) == []
