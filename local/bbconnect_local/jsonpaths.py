"""moto compiles a JSONPath expression each time it evaluates one: EventBridge eight for every event
and target (the paths of its default input template), Step Functions one for each path of every
state it runs. jsonpath_ng builds a new parser for each, about 0.4 ms on this machine, so a
20,000-letter run (some 60,000 status events, each to the tenant's rule and the archive) spent
minutes of CPU compiling the same few strings.

While a local deployment runs, each distinct expression is compiled once and kept. A compiled
expression is not changed by evaluating it (`find`, `update_or_create` change the data, not the
expression), so what moto computes is the same.
"""
from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.Lock()
_users = 0
_saved: list[tuple[Any, str, Any]] = []  # (module, attribute, the original function)


def _targets() -> list[tuple[Any, str]]:
    """Where moto gets its `parse` from: the ext module EventBridge imports it from at each call, and
    the two Step Functions modules that imported it once."""
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    return [(jsonpath_ng.ext, "parse"), (json_path, "parse"), (result_path, "parse")]


def install() -> None:
    global _users
    with _lock:
        _users += 1
        if _users > 1:
            return
        for module, name in _targets():
            original = getattr(module, name)
            _saved.append((module, name, original))
            setattr(module, name, functools.lru_cache(maxsize=4096)(original))


def uninstall() -> None:
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        while _saved:
            module, name, original = _saved.pop()
            setattr(module, name, original)
