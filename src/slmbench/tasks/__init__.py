"""Benchmarks. Each module registers one task (or a family) here; adding one is one line."""

from __future__ import annotations

from slmbench.registry import Registry
from slmbench.tasks.base import Task

TASKS: Registry[type[Task]] = Registry("task")

TASKS.add("humaneval", "slmbench.tasks.humaneval:HumanEval")


def create_task(name: str, **kwargs) -> Task:
    """Instantiate a registered task (``kwargs`` go to its constructor: source, stop_sequences)."""
    cls = TASKS.get(name)
    return cls(**kwargs) if not hasattr(cls, "for_name") else cls.for_name(name, **kwargs)
