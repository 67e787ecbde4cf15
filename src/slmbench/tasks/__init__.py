"""Benchmarks. Each module registers one task (or a family) here; adding one is one line."""

from __future__ import annotations

from slmbench.registry import Registry
from slmbench.tasks.base import Task

TASKS: Registry[type[Task]] = Registry("task")

TASKS.add("humaneval", "slmbench.tasks.humaneval:HumanEval")
TASKS.add("humanevalpack-python", "slmbench.tasks.humanevalpack:HumanEvalPack")
TASKS.add("humanevalpack-js", "slmbench.tasks.humanevalpack:HumanEvalPack")
TASKS.add("humanevalpack-java", "slmbench.tasks.humanevalpack:HumanEvalPack")
TASKS.add("humanevalpack-go", "slmbench.tasks.humanevalpack:HumanEvalPack")
TASKS.add("humanevalpack-cpp", "slmbench.tasks.humanevalpack:HumanEvalPack")
TASKS.add("humanevalpack-rust", "slmbench.tasks.humanevalpack:HumanEvalPack")
TASKS.add("multiple-php", "slmbench.tasks.multiple:MultiPLE")
TASKS.add("multiple-rb", "slmbench.tasks.multiple:MultiPLE")
TASKS.add("multiple-cpp", "slmbench.tasks.multiple:MultiPLE")
TASKS.add("multiple-java", "slmbench.tasks.multiple:MultiPLE")
TASKS.add("multiple-js", "slmbench.tasks.multiple:MultiPLE")
TASKS.add("multiple-ts", "slmbench.tasks.multiple:MultiPLE")
TASKS.add("multiple-sh", "slmbench.tasks.multiple:MultiPLE")
TASKS.add("mbpp", "slmbench.tasks.mbpp:MBPP")
TASKS.add("mbpp-full", "slmbench.tasks.mbpp:MBPP")
TASKS.add("mbpp-sanitized", "slmbench.tasks.mbpp:MBPP")
TASKS.add("humanevalplus", "slmbench.tasks.evalplus:EvalPlus")
TASKS.add("mbppplus", "slmbench.tasks.evalplus:EvalPlus")
TASKS.add("humanevalplus-origin", "slmbench.tasks.evalplus:EvalPlus")
TASKS.add("mbppplus-origin", "slmbench.tasks.evalplus:EvalPlus")
TASKS.add("mercury", "slmbench.tasks.mercury:Mercury")
TASKS.add("codexglue-python", "slmbench.tasks.codexglue:CodeXGLUE")
TASKS.add("codexglue-java", "slmbench.tasks.codexglue:CodeXGLUE")
TASKS.add("codexglue-javascript", "slmbench.tasks.codexglue:CodeXGLUE")
TASKS.add("codexglue-go", "slmbench.tasks.codexglue:CodeXGLUE")
TASKS.add("codexglue-php", "slmbench.tasks.codexglue:CodeXGLUE")
TASKS.add("codexglue-ruby", "slmbench.tasks.codexglue:CodeXGLUE")


def create_task(name: str, **kwargs) -> Task:
    """Instantiate a registered task (``kwargs`` go to its constructor: source, stop_sequences)."""
    cls = TASKS.get(name)
    return cls(**kwargs) if not hasattr(cls, "for_name") else cls.for_name(name, **kwargs)
