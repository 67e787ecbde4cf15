"""Languages the executor can run. One module per language."""

from __future__ import annotations

from slmbench.execution.languages.base import Language
from slmbench.registry import Registry

LANGUAGES: Registry[type[Language]] = Registry("language")

LANGUAGES.add("python", "slmbench.execution.languages.python:Python")
