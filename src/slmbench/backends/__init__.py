"""Model runtimes. ``--model NAME`` or ``--model NAME:TARGET`` picks one by NAME."""

from __future__ import annotations

from collections.abc import Mapping

from slmbench.backends.base import Backend
from slmbench.registry import Registry

BACKENDS: Registry[type[Backend]] = Registry("backend")

BACKENDS.add("reference", "slmbench.backends.reference:ReferenceBackend")
BACKENDS.add("replay", "slmbench.backends.replay:ReplayBackend")


def create_backend(model: str, args: Mapping[str, str] | None = None, *, chat: bool = False, **kwargs) -> Backend:
    """``model`` is ``name`` or ``name:target`` (e.g. ``hf:Qwen/Qwen2.5-Coder-1.5B``)."""
    name, _, target = model.partition(":")
    cls = BACKENDS.get(name)
    return cls(target or name, args, chat=chat, **kwargs)
