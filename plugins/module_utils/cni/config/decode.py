# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Go's encoding/json rules for every JSON object a Go plugin decodes into a struct.

The Go plugins read netconf, `ipam`, `runtimeConfig` and its capability
args, `prevResult`, `args` and results into structs, so that is the
contract runtimes rely on (containerd sends portMappings as
`{"HostPort": 80, ...}`, go-cni's field names). encoding/json:

- a member names a field if its key equals the field's json tag, else if it
  equals it case-insensitively (Go's fold: ASCII case, plus the few
  non-ASCII letters that fold onto ASCII ones: U+017F, U+212A, U+0130/1);
- members are applied in document order, so the *last* member naming a
  field wins (checked against Debian's Go bridge: `{"bridge":"a",
  "Bridge":"b"}` makes `b`, the other order makes `a`);
- `null` leaves the field unset (its default);
- unknown keys are ignored;
- a value of the wrong JSON type is an error; an integer field takes only
  an integral JSON number without fraction or exponent (Go: "cannot
  unmarshal number 1500.0 ... of type int").

Maps (`capabilities`, the raw `prevResult`) keep exact keys; use `raw`.

`Fields` is the one set of typed readers: every plugin's config module
reads through it, and every rejection is a CNIError naming the field by
its path (`runtimeConfig.portMappings[0].hostPort`). Standard library only.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar

from ..spec import ERR_DECODE, ERR_INVALID_NETCONF, CNIError

T = TypeVar("T")

# Go's int is 64 bits; larger numbers fail to decode.
INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1

# Non-ASCII code points whose Go fold (ToUpper(ToLower(r))) is an ASCII
# letter; every json tag we read is ASCII, so only these can matter.
_FOLD_TO_ASCII = {"\u017f": "S", "\u212a": "K", "\u0130": "I", "\u0131": "I"}


def fold(key: str) -> str:
    """The case-folded key, equal for two keys iff Go's json decoder matches them."""
    if key.isascii():
        return key.upper()
    return "".join(_FOLD_TO_ASCII.get(c, c.upper() if c.isascii() else c) for c in key)


_MISSING = object()
_FOLDED: Dict[str, str] = {}  # field tag -> fold(tag)
_FOLDED_MAX = 1024


def lookup(raw: Mapping[str, Any], key: str) -> Any:
    """The value Go decodes into the field tagged `key`; None when absent or null."""
    value = _find(raw, key)
    return None if value is _MISSING else value


def present(raw: Mapping[str, Any], key: str) -> bool:
    """Whether some member names the field `key`, even with null."""
    return _find(raw, key, keep_null=True) is not _MISSING


def member_name(raw: Mapping[str, Any], key: str) -> str:
    """The key as the document spells the member that sets field `key` (for messages)."""
    return _find(raw, key, want_name=True) or key


def _find(raw: Mapping[str, Any], key: str, keep_null: bool = False, want_name: bool = False) -> Any:
    # Document order, the last member naming the field wins. A null member
    # changes nothing (Go: null into a non-pointer value "has no effect").
    found: Any = _MISSING
    name = ""
    folded = ""
    for k, v in raw.items():
        if k != key:
            if len(k) != len(key):  # the fold maps one character to one
                continue
            folded = folded or fold(key)
            if fold(k) != folded:
                continue
        if v is not None or (keep_null and found is _MISSING):
            found, name = v, k
    return name if want_name else found


def key_index(raw: Mapping[str, Any]) -> Dict[str, Any]:
    """`_find`'s answers for every field of `raw` at once, from one pass over its members.

    folded key -> (value, name): the last non-null member naming the field
    and its key as spelled, or (_MISSING, "") when only null members name
    it. A field no member names has no entry.
    """
    index: Dict[str, Any] = {}
    for k, v in raw.items():
        folded = k.upper() if k.isascii() else fold(k)
        if v is not None:
            index[folded] = (v, k)
        elif folded not in index:
            index[folded] = (_MISSING, "")
    return index


def json_type(value: Any) -> str:
    """A value as Go's error messages describe it: `string "x"`, `number 5`, `object`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool %s" % json.dumps(value)
    if isinstance(value, (int, float)):
        return "number %s" % json.dumps(value)
    if isinstance(value, str):
        return "string %s" % json.dumps(value)
    if isinstance(value, list):
        return "array"
    return "object"


class Fields:
    """Typed, Go-rule access to one JSON object; `where` is its path for messages.

    Every reader returns the default for an absent or null member and raises
    CNIError(code) naming the field for a wrong type.

    The members are indexed by their folded key on the first read
    (`key_index`), so each read is one dict lookup instead of a pass over
    every member; `raw` is not to be changed after the first read.
    """

    __slots__ = ("raw", "where", "code", "_index")

    def __init__(self, raw: Mapping[str, Any], where: str = "", code: int = ERR_INVALID_NETCONF) -> None:
        self.raw = raw
        self.where = where
        self.code = code
        self._index: Optional[Dict[str, Any]] = None

    def _entry(self, key: str) -> Any:
        index = self._index
        if index is None:
            index = self._index = key_index(self.raw)
        folded = _FOLDED.get(key)
        if folded is None:
            folded = fold(key)
            if len(_FOLDED) < _FOLDED_MAX:  # our own field tags: a few dozen (error paths add others)
                _FOLDED[key] = folded
        return index.get(folded)

    @classmethod
    def of(cls, value: Any, where: str, code: int = ERR_INVALID_NETCONF) -> "Fields":
        """A JSON object (null reads as empty) or an error naming `where`."""
        if value is None:
            return cls({}, where, code)
        if not isinstance(value, dict):
            raise CNIError(code, "field %r must be an object, got %s" % (where, json_type(value)))
        return cls(value, where, code)

    # -- paths and errors ----------------------------------------------------
    def path(self, key: str) -> str:
        """The field's path, spelled as the document spells it (`...[0].HostPort`)."""
        entry = self._entry(key)
        key = entry[1] if entry is not None and entry[1] else key
        return "%s.%s" % (self.where, key) if self.where else key

    def error(self, key: str, text: str, code: Optional[int] = None) -> CNIError:
        return CNIError(self.code if code is None else code, "field %r %s" % (self.path(key), text))

    def _wrong(self, key: str, want: str, value: Any) -> CNIError:
        return self.error(key, "must be %s, got %s" % (want, json_type(value)))

    # -- readers -------------------------------------------------------------
    def get(self, key: str) -> Any:
        index = self._index
        folded = _FOLDED.get(key)
        entry = self._entry(key) if index is None or folded is None else index.get(folded)  # _entry, its common case inline
        return None if entry is None or entry[0] is _MISSING else entry[0]

    def has(self, key: str) -> bool:
        """Set to something other than null."""
        return self.get(key) is not None

    def present(self, key: str) -> bool:
        """Named by some member, null included."""
        return self._entry(key) is not None

    def _scalar(self, key: str, default: Any, fits: Callable[[Any], bool], want: str) -> Any:
        # Go: null (or absent) leaves the field unset; a wrong JSON type is an error
        value = self.get(key)
        if value is None:
            return default
        if not fits(value):
            raise self._wrong(key, want, value)
        return value

    # str/bool/int are _scalar written out: they are most of a config's reads
    def str(self, key: str, default: str = "") -> str:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def opt_str(self, key: str) -> Optional[str]:
        """A Go *string: None when unset."""
        return self.str(key) if self.has(key) else None

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(key, "a boolean", value)
        return value

    def int(self, key: str, default: int = 0) -> int:
        return self._scalar(key, default, lambda v: isinstance(v, int) and not isinstance(v, bool) and INT_MIN <= v <= INT_MAX, "an integer")

    def opt_int(self, key: str) -> Optional[int]:
        """A Go *int: None when unset."""
        return self.int(key) if self.has(key) else None

    def obj(self, key: str) -> "Fields":
        """A nested object (a Go struct field); absent or null reads as empty."""
        return Fields.of(self.get(key), self.path(key), self.code)

    def list(self, key: str) -> List[Any]:
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(key, "an array", value)
        return value

    def objects(self, key: str) -> List["Fields"]:
        """A list of objects; a null entry reads as an empty object (Go: zero struct)."""
        return [Fields.of(item, "%s[%d]" % (self.path(key), i), self.code) for i, item in enumerate(self.list(key))]

    def strings(self, key: str) -> List[str]:
        out = []
        for i, item in enumerate(self.list(key)):
            if item is None:
                item = ""  # Go: a null element of []string is ""
            if not isinstance(item, str):
                raise self.error("%s[%d]" % (key, i), "must be a string, got %s" % json_type(item))
            out.append(item)
        return out

    def each(self, key: str, read: Callable[[Any, str], T]) -> List[T]:
        """read(value, path) for every element of a list field."""
        return [read(item, "%s[%d]" % (self.path(key), i)) for i, item in enumerate(self.list(key))]

    def bool_map(self, key: str) -> Dict[str, bool]:
        """A Go map[string]bool: exact keys, boolean values."""
        value = self.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._wrong(key, "an object", value)
        for k, v in value.items():
            if not isinstance(v, bool):
                raise self.error("%s.%s" % (key, k), "must be a boolean, got %s" % json_type(v))
        return dict(value)


def decode_json(data: bytes, what: str = "network config") -> Dict[str, Any]:
    """stdin (or a file) as one JSON object, or code 6 (Go: "error unmarshall network config")."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CNIError(ERR_DECODE, "error unmarshalling %s: %s" % (what, e))
    except RecursionError:  # found by the fuzz suite: a spec error, not a traceback
        raise CNIError(ERR_DECODE, "error unmarshalling %s: nested too deeply" % what)
    if not isinstance(obj, dict):
        raise CNIError(ERR_DECODE, "error unmarshalling %s: expected a JSON object" % what)
    return obj
