"""Requests the harness holds back until enough programs of one group can be built together.

A language with shared builds (``Language.shared_build_limit``) compiles many distinct programs
in one compiler run (see ``builds.BuiltRunner.build_shared``). The executor puts such requests
here as they come; a group is sent as one shared build when it is full, and what is left when
the requests run out is sent group by group.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from slmbench.types import ExecRequest

Item = TypeVar("Item")
# (group key, most members per build), or None: the request is built alone
Grouping = Callable[[ExecRequest], tuple[Hashable, int] | None]


class Gatherer(Generic[Item]):
    def __init__(self, grouping: Grouping) -> None:
        self.grouping = grouping
        self.groups: dict[Hashable, list[Item]] = {}

    def hold(self, item: Item, request: ExecRequest) -> list[Item] | None:
        """Keep ``item`` for a shared build. Returns its group when that is now full, [] when
        it is held, None when the request is not built together with others."""
        found = self.grouping(request)
        if found is None:
            return None
        key, limit = found
        group = self.groups.setdefault(key, [])
        group.append(item)
        if len(group) >= limit:
            del self.groups[key]
            return group
        return []

    def take(self) -> list[Item] | None:
        """The largest group held (the requests ran out), or None. A larger shared build makes
        more samples runnable per second of compiling, so the workers never wait for runs."""
        if not self.groups:
            return None
        return self.groups.pop(max(self.groups, key=lambda k: len(self.groups[k])))

    def __len__(self) -> int:
        """Groups held: each is one shared build to send."""
        return len(self.groups)
