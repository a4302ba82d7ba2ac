# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a back-end's reconcile() raises when its part of the node state fails.

The single-part modules (cni_netconf, cni_bridge, cni_routes, cni_boot) fail
with `msg` and `extra` as they are; cni_node_state names the part in front:
`<part>.<msg>` when the message starts with the option it is about (bad
input), `<part>: <msg>` otherwise.
"""

from __future__ import annotations

from typing import Any


class PartFailed(Exception):
    def __init__(self, msg: str, names_option: bool = False, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.names_option = names_option
        self.extra = extra

    def in_part(self, part: str) -> str:
        return ("%s.%s" if self.names_option else "%s: %s") % (part, self.msg)
