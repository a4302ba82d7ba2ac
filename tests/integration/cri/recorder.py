# SPDX-License-Identifier: GPL-3.0-or-later
"""See every plugin call a runtime makes: a bin dir of transparent recording wrappers.

Each wrapper has a plugin's name, passes argv, environment and stdin
unchanged to the real plugin, returns its stdout, stderr and exit code
unchanged, and appends one JSON line per call (env, stdin, rc, stdout) to a
log (with the plugin's wall time). Delegated IPAM calls go through the wrappers too (CNI_PATH is the
wrapper dir). Like strace, only observation: the plugin sees what the
runtime sent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

WRAPPER = """#!/usr/bin/python3 -I
# nodenet.cni test recorder for {name!r}: exec {real!r}, log the call
import fcntl, json, os, subprocess, sys, time
data = sys.stdin.buffer.read()
start = time.monotonic()
proc = subprocess.run([{real!r}] + sys.argv[1:], input=data, capture_output=True, check=False)
elapsed = time.monotonic() - start
entry = {{"plugin": {name!r}, "env": dict(os.environ), "stdin": data.decode("utf-8", "replace"), "rc": proc.returncode, "elapsed": elapsed,
          "stdout": proc.stdout.decode("utf-8", "replace"), "stderr": proc.stderr.decode("utf-8", "replace")}}
with open({log!r}, "a", encoding="utf-8") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.write(json.dumps(entry) + "\\n")
sys.stdout.buffer.write(proc.stdout)
sys.stderr.buffer.write(proc.stderr)
sys.exit(proc.returncode)
"""


@dataclass
class Call:
    plugin: str
    env: Dict[str, str]
    stdin: str
    rc: int
    stdout: str
    stderr: str
    elapsed: float = 0.0  # seconds, the real plugin's run including its delegated calls

    @property
    def command(self) -> str:
        return self.env.get("CNI_COMMAND", "")

    @property
    def conf(self) -> Dict[str, Any]:
        try:
            return json.loads(self.stdin)
        except ValueError:
            return {}

    @property
    def args(self) -> Dict[str, str]:
        """CNI_ARGS as key -> value (the pairs' order is in self.env["CNI_ARGS"])."""
        return dict(p.split("=", 1) for p in self.env.get("CNI_ARGS", "").split(";") if "=" in p)


class Recorder:
    def __init__(self, real_bin: str, wrap_dir: str, log: str) -> None:
        self.real_bin, self.bin_dir, self.log = real_bin, wrap_dir, log
        os.makedirs(wrap_dir, exist_ok=True)
        for name in sorted(os.listdir(real_bin)):
            real = os.path.join(real_bin, name)
            if os.path.isfile(real) and os.access(real, os.X_OK):
                path = os.path.join(wrap_dir, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(WRAPPER.format(name=name, real=real, log=log))
                os.chmod(path, 0o755)

    def calls(self, plugin: Optional[str] = None, command: Optional[str] = None, container_id: Optional[str] = None) -> List[Call]:
        try:
            with open(self.log, encoding="utf-8") as f:
                calls = [Call(**json.loads(line)) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [c for c in calls if (plugin is None or c.plugin == plugin) and (command is None or c.command == command)
                and (container_id is None or c.env.get("CNI_CONTAINERID") == container_id)]

    def failures(self) -> List[Call]:
        return [c for c in self.calls() if c.rc != 0]
