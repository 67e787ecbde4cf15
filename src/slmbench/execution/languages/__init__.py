"""Languages the executor can run. One module per language."""

from __future__ import annotations

import functools

from slmbench.execution.languages.base import Language
from slmbench.registry import Registry

LANGUAGES: Registry[type[Language]] = Registry("language")

LANGUAGES.add("python", "slmbench.execution.languages.python:Python")
LANGUAGES.add("javascript", "slmbench.execution.languages.javascript:JavaScript")
LANGUAGES.add("typescript", "slmbench.execution.languages.typescript:TypeScript")
LANGUAGES.add("java", "slmbench.execution.languages.java:Java")
LANGUAGES.add("cpp", "slmbench.execution.languages.cpp:Cpp")
LANGUAGES.add("go", "slmbench.execution.languages.go:Go")
LANGUAGES.add("rust", "slmbench.execution.languages.rust:Rust")
LANGUAGES.add("php", "slmbench.execution.languages.php:Php")
LANGUAGES.add("ruby", "slmbench.execution.languages.ruby:Ruby")
LANGUAGES.add("shell", "slmbench.execution.languages.shell:Shell")


@functools.cache
def trailer_for(language: str) -> str:
    """The source a task appends after the tests of ``language`` (see Language.trailer)."""
    return LANGUAGES.get(language)().trailer()
