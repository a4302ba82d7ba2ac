# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write plugins/module_utils/cni/agent/fallback_dataclasses.py: the methods
the `dataclass` decorator generates for the plugin package's dataclasses,
as source, so that the shims' in-process fallback runs them from its pyc
instead of compiling them on every exec (agent/fallback.py,
`fast_dataclasses`).

    .venv/bin/python scripts/gen_fallback_dataclasses.py [--check]

For each text `dataclasses` passes to `exec` (on this interpreter: CPython
3.11's `_create_fn`, one `def __create_fn__(...)` per generated method) the
file holds the same function, re-indented and wrapped for pep8, and the text
itself as its key. tests/unit/test_fallback_dataclasses.py checks that each
one compiles to the same code as its text and that the file is current
(`--check` exits 1 when it is not).
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import tokenize
import types
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CNI = os.path.join(ROOT, "plugins", "module_utils", "cni")
TARGET = os.path.join(CNI, "agent", "fallback_dataclasses.py")
WIDTH = 150

# Every module an exec'd plugin may import (the agent's own modules, node/
# and runtime/ are not a plugin call's), loaded as the installed runtime
# names it; the texts `dataclasses` execs are printed, NUL-separated.
RECORD = r"""
import dataclasses, importlib, importlib.util, os, pkgutil, sys
texts = []
def record(source, globals=None, locals=None):
    texts.append(source)
    return exec(source, globals, locals)
dataclasses.exec = record
spec = importlib.util.spec_from_file_location("nodenet_cni", %(init)r, submodule_search_locations=[%(cni)r])
package = importlib.util.module_from_spec(spec)
sys.modules["nodenet_cni"] = package
spec.loader.exec_module(package)
names = ["nodenet_cni.spec", "nodenet_cni.skel", "nodenet_cni.invoke"]
for sub in ("config", "ipam", "net", "plugin"):
    names += ["nodenet_cni.%%s.%%s" %% (sub, m.name) for m in pkgutil.iter_modules([os.path.join(%(cni)r, sub)])]
for name in sorted(names):
    importlib.import_module(name)
sys.stdout.write("\0".join(texts))
"""


def record_texts(python: str = sys.executable) -> List[str]:
    """The texts, in a fresh interpreter (each dataclass is made once, at import), first seen first."""
    code = RECORD % {"init": os.path.join(CNI, "__init__.py"), "cni": CNI}
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, check=True, timeout=120).stdout.decode()
    seen: Dict[str, None] = {}
    for text in out.split("\0"):
        if text:
            seen.setdefault(text, None)
    return list(seen)


def _split_fstring(token: str) -> List[str]:
    """An f-string literal split after each ', ' outside braces, as adjacent literals (the same string)."""
    prefix_len = 0
    while token[prefix_len] not in "'\"":
        prefix_len += 1
    prefix, quote, body = token[:prefix_len], token[prefix_len], token[prefix_len + 1: -1]
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0 and body[i + 1: i + 2] == " ":
            pieces.append(body[start: i + 2])
            start = i + 2
    pieces.append(body[start:])
    return [prefix + quote + p + quote for p in pieces if p]


def _format(line: str) -> List[str]:
    """One line of ast.unparse's output, pep8 as ansible-test checks it: an
    annotated parameter's default spaced (E252); a long line wrapped after
    commas inside brackets (a long f-string split into adjacent literals),
    continuation lines aligned after their opening bracket (visual indent)."""
    indent = line[: len(line) - len(line.lstrip(" "))]
    body = line[len(indent):]
    is_def = body.startswith("def ")
    atoms: List[Tuple[str, bool, str]] = []  # text, a break may follow, "open"/"close"/""
    depth = 0
    col = 0
    for tok in tokenize.generate_tokens(io.StringIO(body + "\n").readline):
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            break
        gap, col, text = body[col: tok.start[1]], tok.end[1], tok.string
        if tok.type == tokenize.STRING and text.lstrip("rbRB")[:1] in "fF" and len(indent) + len(body) > WIDTH:
            pieces = _split_fstring(text)
            if depth == 0:
                atoms.append((gap + "(", False, "open"))
                gap = ""
            for i, piece in enumerate(pieces):
                atoms.append(((gap if i == 0 else " ") + piece, i < len(pieces) - 1, ""))
            if depth == 0:
                atoms.append((")", False, "close"))
            continue
        marker = ""
        if text in ("(", "[", "{"):
            depth += 1
            marker = "open"
        elif text in (")", "]", "}"):
            depth -= 1
            marker = "close"
        elif text == "=" and is_def and depth == 1:
            gap, text = " ", "= "
        atoms.append((gap + text, text == "," and depth >= 1, marker))
    one = indent + "".join(text for text, _b, _m in atoms)
    if len(one) <= WIDTH:
        return [one]
    lines: List[str] = []
    current = indent
    stack: List[int] = []  # the column after each open bracket
    segment: List[Tuple[str, bool, str]] = []
    for atom in atoms:
        segment.append(atom)
        if not atom[1] and atom is not atoms[-1]:
            continue
        # a segment ends where a break may follow: put it on a new line if it does not fit
        width = sum(len(text) for text, _b, _m in segment)
        if lines or current.strip():
            if len(current) + width > WIDTH and stack:
                lines.append(current.rstrip(" "))
                current = " " * stack[-1]
                segment[0] = (segment[0][0].lstrip(" "),) + segment[0][1:]
        for text, _b, marker in segment:
            current += text
            if marker == "open":
                stack.append(len(current))
            elif marker == "close":
                stack.pop()
        segment = []
    lines.append(current)
    return lines


def function_source(text: str) -> List[str]:
    lines: List[str] = []
    for line in ast.unparse(ast.parse(text)).splitlines():
        lines.extend(_format(line) if line.strip() else [line])
    return lines


def _key_source(text: str) -> List[str]:
    """The text as a parenthesised implicit concatenation of short literals."""
    out = []
    for part in text.splitlines(True):
        while part:
            out.append("    %r" % part[:100])
            part = part[100:]
    return out


def _code_fields(code: types.CodeType) -> tuple:
    """What a code object does, without where its source was (file, lines, columns)."""
    consts = tuple(_code_fields(c) if isinstance(c, types.CodeType) else (type(c), c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names, code.co_varnames, code.co_cellvars, code.co_freevars, code.co_name,
            code.co_qualname, code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags,
            code.co_stacksize, code.co_exceptiontable)


def created_fn(source: str, filename: str = "<string>") -> types.CodeType:
    """The code of the `__create_fn__` that `source` defines."""
    module = compile(source, filename, "exec", dont_inherit=True)
    return next(c for c in module.co_consts if isinstance(c, types.CodeType) and c.co_name == "__create_fn__")


def same_code(text: str, source: str) -> bool:
    return _code_fields(created_fn(text)) == _code_fields(created_fn(source))


def render(texts: List[str]) -> str:
    out = [
        "# -*- coding: utf-8 -*-",
        "# Copyright (c) nodenet.cni contributors",
        "# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)",
        "# SPDX-License-Identifier: GPL-3.0-or-later",
        "# Generated by scripts/gen_fallback_dataclasses.py; do not edit.",
        "# pylint: disable=function-redefined,unused-argument,invalid-name,line-too-long,too-many-arguments,too-many-lines,unidiomatic-typecheck",
        '"""The methods `dataclass` generates for the plugin package\'s dataclasses on',
        "CPython %d.%d, as source: the shims' in-process fallback runs them from this" % sys.version_info[:2],
        "module's pyc instead of compiling each text on every exec (agent/fallback.py,",
        "`fast_dataclasses`). `CODE` maps the text `dataclasses` would `exec` to the",
        "code of the same `__create_fn__`; a text not here is compiled as usual.",
        '"""',
        "",
        "CACHE_TAG = %r" % sys.implementation.cache_tag,
        "CODE = {}",
    ]
    for text in texts:
        source = function_source(text)
        if max(len(line) for line in source) > 160 or not same_code(text, "\n".join(source)):
            continue  # stays compiled on use (ansible-test's pep8 allows 160 columns)
        out += ["", ""]
        out += source
        out += ["", "", "CODE["]
        out += _key_source(text)
        out += ["] = __create_fn__.__code__"]
    out += ["", "del __create_fn__"]
    return "\n".join(out) + "\n"


def main(argv: List[str]) -> int:
    text = render(record_texts())
    if "--check" in argv:
        with open(TARGET) as f:
            current = f.read()
        if current != text:
            sys.stderr.write("%s is not current: run %s\n" % (os.path.relpath(TARGET, ROOT), os.path.relpath(__file__, ROOT)))
            return 1
        return 0
    with open(TARGET, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
