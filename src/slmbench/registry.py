"""A typed registry of plug-ins with lazy ``"module:object"`` entries.

Each plug-in kind (tasks, backends, languages) owns one Registry instance; these are the only
module-level state in the package. Entries are import paths so that listing or looking up a
plug-in never imports heavy dependencies (torch, vllm, ...) until it is used.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from slmbench.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | T] = {}
        self._patterns: list[tuple[Callable[[str], bool], str]] = []

    def add(self, name: str, target: str | T) -> None:
        """Register ``name`` -> ``"package.module:attr"`` (imported on first use) or an object."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = target

    def add_family(self, matches: Callable[[str], bool], target: str) -> None:
        """Register a target for a family of names (e.g. ``hf:<model id>``)."""
        self._patterns.append((matches, target))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries or any(m(name) for m, _ in self._patterns)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        target = self._entries.get(name)
        if target is None:
            for matches, family_target in self._patterns:
                if matches(name):
                    target = family_target
                    break
        if target is None:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"`slmbench list` shows the {self.kind}s"
            raise UserError(f"unknown {self.kind} {name!r}", hint=hint)
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            obj = getattr(importlib.import_module(module_name), attr)
            if name in self._entries:
                self._entries[name] = obj
            return obj
        return target
