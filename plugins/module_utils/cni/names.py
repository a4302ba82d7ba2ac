# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one rule for an interface name and the one rule for a container ID
or network name, shared by every layer (stdlib only). Each caller picks its
own error code and wording; the rule itself lives only here.

The kernel limit is IFNAMSIZ (16) bytes including the NUL, so a name is at
most 15 *bytes*: "é" counts twice. Counting characters (as skel and the
bridge config once did) lets a 15-character non-ASCII name through to a
netlink call that then fails half-way through an ADD.
"""

from __future__ import annotations

import re
from typing import Optional

IFNAMSIZ = 15  # bytes, without the terminating NUL

# The parts of the interface-name rule a name can break (ifname_fault).
EMPTY = "empty"
NOT_UTF8 = "not UTF-8"
TOO_LONG = "too long"
DOTS = "dots"
BAD_CHARACTER = "bad character"

_IFNAME_PROBLEMS = {
    EMPTY: "must not be empty",
    NOT_UTF8: "is not valid UTF-8",
    TOO_LONG: "is longer than %d bytes" % IFNAMSIZ,
    DOTS: "must not be '.' or '..'",
    BAD_CHARACTER: "contains '/', ':', whitespace or a control character",
}


def ifname_fault(name: object) -> Optional[str]:
    """Which part of the rule `name` breaks (EMPTY, NOT_UTF8, TOO_LONG, DOTS,
    BAD_CHARACTER), or None (pkg/utils ValidateInterfaceName, in bytes)."""
    if not isinstance(name, str) or not name:
        return EMPTY
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return NOT_UTF8
    if size > IFNAMSIZ:
        return TOO_LONG
    if name in (".", ".."):
        return DOTS
    if any(c in "/:" or c.isspace() or not c.isprintable() for c in name):
        return BAD_CHARACTER
    return None


def ifname_problem(name: object) -> Optional[str]:
    """Why `name` is not a valid interface name, in words ("is longer than
    15 bytes"), or None."""
    fault = ifname_fault(name)
    return None if fault is None else _IFNAME_PROBLEMS[fault]


# Go's pkg/utils cniReg, for container IDs and network names:
# `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$` in Go's regexp, where `$` is the end of the
# text. Python's `$` also matches before a final "\n", so we match the whole
# string. A network name becomes a directory under dataDir: this is also what
# keeps "../x" out of it. A pattern string: re compiles (and caches) it on
# first use, not at import on every plugin exec.
NAME_PATTERN = r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*\Z"


def valid_name(value: object) -> bool:
    """Go's rule for container IDs and network names (pkg/utils cniReg), whole string."""
    return isinstance(value, str) and re.match(NAME_PATTERN, value) is not None
