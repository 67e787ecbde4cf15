"""Benchmarks published once per programming language (HumanEvalPack, MultiPL-E).

One task per language, named ``<prefix>-<lang>``; a subclass says where each language's rows
live (data directory files, hub config), how a row becomes a Problem and how a solution becomes
a test program. What they share is here: the language table lookup, the documented data defects
(``KNOWN``), finding the rows, and checking the language's toolchain once before the first
program is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from slmbench.data import DataSource, load_hub_dataset, read_jsonl, require_fields, sha256_file, sha256_rows
from slmbench.errors import UserError, at
from slmbench.tasks.base import Task
from slmbench.types import Problem


class LanguageFamilyTask(Task):
    prefix: ClassVar[str]  # task names are f"{prefix}-{lang}"
    title: ClassVar[str]  # how users know the benchmark, in messages
    hub_dataset: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]  # string fields every row must have
    expected_rows: ClassVar[str]  # for the "no problems" hint
    # language key -> (executor language, stop sequences, ...): a subclass may add more per language
    LANGS: ClassVar[Mapping[str, tuple[Any, ...]]]
    # Data defects, per language: problem id -> why every program fails (each shown by a test)
    KNOWN: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    def __init__(
        self,
        lang: str,
        source: DataSource | None = None,
        *,
        stop_sequences: Sequence[str] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if lang not in self.LANGS:
            raise UserError(f"{self.title} has no language {lang!r}", hint=f"one of {', '.join(self.LANGS)}")
        self.lang = lang
        self.exec_language, stops = self.LANGS[lang][:2]
        self.name = f"{self.prefix}-{lang}"  # type: ignore[misc] - per-instance name of the family
        self.languages = (self.exec_language,)  # type: ignore[misc]
        self.default_stop_sequences = stops  # type: ignore[misc]
        self.known_exceptions = dict(self.KNOWN.get(lang, {}))  # type: ignore[misc]
        super().__init__(source, stop_sequences=stop_sequences)
        self.timeout_s = timeout_s
        self.source_description: str | None = None
        self._toolchain_checked = False

    @classmethod
    def for_name(cls, name: str, **kwargs: Any) -> LanguageFamilyTask:
        return cls(name.removeprefix(cls.prefix + "-"), **kwargs)

    # ---- what a subclass says ---------------------------------------------------------
    def data_files(self) -> tuple[str, ...]:
        """Paths under the data directory holding this language's rows, first found wins."""
        raise NotImplementedError

    def hub_config(self) -> str:
        raise NotImplementedError

    def row_problem(self, row: dict) -> Problem:
        """A checked row (``fields`` present and strings) as a Problem."""
        raise NotImplementedError

    # ---- data -------------------------------------------------------------------------
    def load(self) -> tuple[list[Problem], str]:
        local = self.source.find(*self.data_files())
        if local is not None:
            self.source_description = f"data directory: {local}"
            rows: list[tuple[dict, object, int | None]] = [(row, local, n) for n, row in read_jsonl(local)]
            checksum = sha256_file(local)
        elif self.source.allow_download:
            config = self.hub_config()
            hub_rows = load_hub_dataset(self.hub_dataset, name=config, split="test", source=self.source)
            self.source_description = f"hub: {self.hub_dataset} ({config}, test)"
            rows = [(row, self.hub_dataset, None) for row in hub_rows]
            checksum = sha256_rows(hub_rows)
        else:
            raise UserError(
                f"{self.title} {self.lang} data not found: none of {', '.join(self.data_files())} "
                "in the data directory",
                hint="see docs/languages.md for the files, or pass --allow-download",
            )
        problems = [self._checked_problem(row, where, lineno) for row, where, lineno in rows]
        if not problems:
            raise UserError(f"{rows and rows[0][1] or self.data_files()[0]}: no problems", hint=self.expected_rows)
        return problems, checksum

    def _checked_problem(self, row: dict, where: object, lineno: int | None) -> Problem:
        require_fields(row, self.fields, Path(str(where)), lineno)
        for key in self.fields:
            if not isinstance(row[key], str):
                raise UserError(f"{at(where, lineno)}: field {key} must be a string", hint=f"is this {self.title}?")
        return self.row_problem(row)

    # ---- scoring ----------------------------------------------------------------------
    def checked_trailer(self) -> str:
        """The language's result trailer, after checking (once) that its toolchain is here:
        a missing compiler is one clear error before any program runs, not a failed sample each."""
        if not self._toolchain_checked:
            from slmbench.toolchains import require

            require(self.exec_language)
            self._toolchain_checked = True
        from slmbench.execution.languages import trailer_for

        return trailer_for(self.exec_language)
