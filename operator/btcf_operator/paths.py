"""Reading and addressing nested JSON objects: the few helpers every builder of the operator uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Path = tuple[str | int, ...]
"""Keys from the root of an object down to one value (an int indexes a list)."""


def dig(obj: Mapping[str, Any], path: Sequence[str | int]) -> Any:
    """The value at ``path``, or None when any level on the way is missing."""
    node: Any = obj
    for key in path:
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
    return node


def pointer(path: Sequence[str | int]) -> str:
    """The RFC 6901 JSON pointer of ``path``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
