# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one rule for an interface name, shared by every layer (stdlib only).

The kernel limit is IFNAMSIZ (16) bytes including the NUL, so a name is at
most 15 *bytes*: "é" counts twice. Counting characters (as skel and the
bridge config once did) lets a 15-character non-ASCII name through to a
netlink call that then fails half-way through an ADD.
"""

from __future__ import annotations

from typing import Optional

IFNAMSIZ = 15  # bytes, without the terminating NUL


def ifname_problem(name: object) -> Optional[str]:
    """Why `name` is not a valid interface name, or None (pkg/utils ValidateInterfaceName)."""
    if not isinstance(name, str) or not name:
        return "must not be empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if size > IFNAMSIZ:
        return "is longer than %d bytes" % IFNAMSIZ
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if any(c in "/:" or c.isspace() or not c.isprintable() for c in name):
        return "contains '/', ':', whitespace or a control character"
    return None
