"""The SQLite store: the only module that touches the database.

Rows are keyed by (run, problem, sample[, suite]) and written with INSERT OR IGNORE, so writing
the same thing twice is harmless and an interrupted run resumes from what is already there.
Generations and executions are committed as they arrive (WAL mode: a SIGKILL loses at most the
rows not yet committed, never corrupts what was). Scores are derived data and are replaced as a
whole per run, in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from slmbench.errors import UserError
from slmbench.spec import RunSpec
from slmbench.types import ExecResult, Score, Usage, Verdict

APP_ID = "slmbench"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT,
    spec TEXT NOT NULL,
    identity TEXT NOT NULL,
    n INTEGER NOT NULL,
    status TEXT NOT NULL,
    dataset_checksum TEXT,
    environment TEXT NOT NULL DEFAULT '{}',
    backend_info TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    problem_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    raw TEXT NOT NULL,
    form TEXT NOT NULL,
    solution TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s REAL,
    ttft_s REAL,
    peak_memory_bytes INTEGER,
    energy_j REAL,
    usage_extra TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    PRIMARY KEY (run_id, problem_id, sample)
);
CREATE TABLE IF NOT EXISTS executions (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    problem_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    suite TEXT NOT NULL,
    verdict TEXT NOT NULL,
    message TEXT NOT NULL,
    exit_code INTEGER,
    cpu_s REAL NOT NULL,
    wall_s REAL NOT NULL,
    compile_s REAL NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL,
    cached INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run_id, problem_id, sample, suite)
);
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    metric TEXT NOT NULL,
    problem_id TEXT NOT NULL,  -- '' for the task-level figure
    value REAL NOT NULL,
    ci_low REAL,
    ci_high REAL,
    n_problems INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    PRIMARY KEY (run_id, metric, problem_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    time REAL NOT NULL,
    event TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    task: str
    model: str
    label: str | None
    spec: RunSpec
    n: int  # samples per problem asked for by the latest invocation
    status: str  # "generating" | "executing" | "scoring" | "complete"
    dataset_checksum: str | None
    environment: dict[str, Any] = field(default_factory=dict)
    backend_info: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0

    @property
    def display_name(self) -> str:
        return self.label or self.model


@dataclass(frozen=True)
class GenerationRecord:
    problem_id: str
    sample: int
    raw: str
    form: str
    solution: str
    finish_reason: str
    usage: Usage


class Store:
    """One SQLite file holding any number of runs."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise UserError(f"store {self.path} is a directory", hint="pass --store FILE.db")
        existed = self.path.exists() and self.path.stat().st_size > 0
        if existed:
            _check_sqlite_header(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise UserError(f"cannot open store {self.path}: {exc}", hint="check the path and permissions") from None
        self._db.row_factory = sqlite3.Row
        try:
            if existed:  # before anything writes to it: a foreign file must stay untouched
                try:
                    self._check_foreign()
                except UserError:
                    self._db.close()
                    raise
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('app', ?)", (APP_ID,))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if _is_permission_error(exc):
                # a sound store this process may not write to (read-only file, folder or mount)
                raise UserError(
                    f"cannot write to store {self.path} ({exc})",
                    hint="check its permissions, or copy it to a writable place and pass that --store",
                ) from None
            raise UserError(
                f"store {self.path} is corrupt or not an slmbench store ({exc})",
                hint="move it aside and re-run with a new --store; results in it cannot be reused",
            ) from None

    def _check_foreign(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return
        app = None
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='app'").fetchone()
            app = row[0] if row else None
        if app != APP_ID:
            raise UserError(
                f"{self.path} is an SQLite database of another program (tables: {', '.join(sorted(tables))[:80]})",
                hint="pass --store with a new file name; slmbench never writes into foreign databases",
            )
        version = int(self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise UserError(
                f"store {self.path} was written by a newer slmbench (schema {version} > {SCHEMA_VERSION})",
                hint="upgrade slmbench, or use another --store",
            )
        ok = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise UserError(
                f"store {self.path} failed SQLite's integrity check ({ok})",
                hint="move it aside and re-run with a new --store",
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- runs -------------------------------------------------------------------------
    def begin_run(
        self,
        spec: RunSpec,
        *,
        dataset_checksum: str,
        environment: dict[str, Any],
    ) -> RunRecord:
        """Create the run, or reopen it for resuming/extending. Same identity -> same run."""
        run_id = spec.run_id()
        now = time.time()
        existing = self.run(run_id)
        if existing is not None and existing.dataset_checksum not in (None, dataset_checksum):
            raise UserError(
                f"run {run_id} was made on a dataset with checksum {existing.dataset_checksum[:12]}, "
                f"but the data now has {dataset_checksum[:12]}",
                hint="point --data-dir at the data the run used, or use a new --store",
            )
        with self._tx():
            if existing is None:
                self._db.execute(
                    "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        spec.task,
                        spec.model,
                        spec.label,
                        spec.model_dump_json(),
                        json.dumps(spec.identity(), sort_keys=True, default=str),
                        spec.n,
                        "generating",
                        dataset_checksum,
                        json.dumps(environment, default=str),
                        "{}",
                        now,
                        now,
                    ),
                )
            else:
                self._db.execute(
                    "UPDATE runs SET spec=?, n=?, label=COALESCE(?, label), status='generating', environment=?, updated=? WHERE run_id=?",
                    (spec.model_dump_json(), spec.n, spec.label, json.dumps(environment, default=str), now, run_id),
                )
        record = self.run(run_id)
        assert record is not None
        return record

    def set_status(self, run_id: str, status: str) -> None:
        self._db.execute("UPDATE runs SET status=?, updated=? WHERE run_id=?", (status, time.time(), run_id))

    def set_backend_info(self, run_id: str, info: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE runs SET backend_info=?, updated=? WHERE run_id=?",
            (json.dumps(info, default=str), time.time(), run_id),
        )

    def run(self, run_id: str) -> RunRecord | None:
        row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return _run_from_row(row) if row else None

    def runs(self) -> list[RunRecord]:
        return [_run_from_row(r) for r in self._db.execute("SELECT * FROM runs ORDER BY created")]

    def find_run(self, ref: str) -> RunRecord:
        """A run by id, unique id prefix, or label."""
        exact = self.run(ref)
        if exact:
            return exact
        rows = self._db.execute(
            "SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' OR label = ? ORDER BY created",
            (ref.replace("%", "\\%").replace("_", "\\_") + "%", ref),
        ).fetchall()
        if len(rows) == 1:
            return _run_from_row(rows[0])
        if not rows:
            raise UserError(f"no run {ref!r} in {self.path}", hint="`slmbench show` lists the runs in the store")
        names = ", ".join(r["run_id"] for r in rows[:5])
        raise UserError(f"{ref!r} matches {len(rows)} runs ({names}...)", hint="give more of the run id")

    # ---- generations ------------------------------------------------------------------
    def add_generations(self, run_id: str, rows: Iterable[GenerationRecord]) -> int:
        now = time.time()
        data = [
            (
                run_id,
                g.problem_id,
                g.sample,
                g.raw,
                g.form,
                g.solution,
                g.finish_reason,
                g.usage.prompt_tokens,
                g.usage.completion_tokens,
                g.usage.latency_s,
                g.usage.ttft_s,
                g.usage.peak_memory_bytes,
                g.usage.energy_j,
                json.dumps(dict(g.usage.extra), default=str),
                now,
            )
            for g in rows
        ]
        with self._tx():
            cur = self._db.executemany("INSERT OR IGNORE INTO generations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", data)
        return cur.rowcount

    def generated_samples(self, run_id: str) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for pid, sample in self._db.execute("SELECT problem_id, sample FROM generations WHERE run_id=?", (run_id,)):
            out.setdefault(pid, set()).add(sample)
        return out

    def generations(
        self, run_id: str, *, max_sample: int | None = None, problem_ids: Collection[str] | None = None
    ) -> list[GenerationRecord]:
        """A run's generations: all, or samples below ``max_sample`` of ``problem_ids``."""
        sql = "SELECT * FROM generations WHERE run_id=?"
        args: tuple[Any, ...] = (run_id,)
        if max_sample is not None:
            sql += " AND sample < ?"
            args += (max_sample,)
        rows = (_generation_from_row(r) for r in self._db.execute(sql + " ORDER BY problem_id, sample", args))
        if problem_ids is None:
            return list(rows)
        wanted = set(problem_ids)
        return [g for g in rows if g.problem_id in wanted]

    def usages(self, run_id: str) -> list[Usage]:
        return [g.usage for g in self.generations(run_id)]

    # ---- executions -------------------------------------------------------------------
    def add_executions(self, run_id: str, rows: Iterable[tuple[str, int, str, ExecResult]]) -> int:
        now = time.time()
        data = [
            (
                run_id,
                pid,
                sample,
                suite,
                r.verdict.value,
                r.message,
                r.exit_code,
                r.cpu_s,
                r.wall_s,
                r.compile_s,
                r.stdout,
                r.stderr,
                int(r.cached),
                now,
            )
            for pid, sample, suite, r in rows
        ]
        with self._tx():
            cur = self._db.executemany("INSERT OR IGNORE INTO executions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", data)
        return cur.rowcount

    def delete_executions(self, run_id: str) -> None:
        """Forget a run's verdicts and the scores made from them (its generations stay)."""
        with self._tx():
            self._db.execute("DELETE FROM executions WHERE run_id=?", (run_id,))
            self._db.execute("DELETE FROM scores WHERE run_id=?", (run_id,))

    def executions(self, run_id: str) -> dict[tuple[str, int, str], ExecResult]:
        out = {}
        for r in self._db.execute("SELECT * FROM executions WHERE run_id=?", (run_id,)):
            out[(r["problem_id"], r["sample"], r["suite"])] = ExecResult(
                key=f"{r['problem_id']}#{r['sample']}#{r['suite']}",
                verdict=Verdict(r["verdict"]),
                message=r["message"],
                exit_code=r["exit_code"],
                cpu_s=r["cpu_s"],
                wall_s=r["wall_s"],
                compile_s=r["compile_s"],
                stdout=r["stdout"],
                stderr=r["stderr"],
                cached=bool(r["cached"]),
            )
        return out

    # ---- scores and events ------------------------------------------------------------
    def replace_scores(self, run_id: str, scores: Iterable[Score]) -> None:
        data = [
            (run_id, s.metric, s.problem_id or "", s.value, s.ci_low, s.ci_high, s.n_problems, s.n_samples)
            for s in scores
        ]
        with self._tx():
            self._db.execute("DELETE FROM scores WHERE run_id=?", (run_id,))
            self._db.executemany("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?)", data)

    def scored_problem_ids(self, run_id: str) -> list[str]:
        """The problems the run's latest scores are about (a run may hold generations of more,
        from earlier invocations with a larger --limit)."""
        rows = self._db.execute("SELECT DISTINCT problem_id FROM scores WHERE run_id=? AND problem_id != ''", (run_id,))
        return sorted(r[0] for r in rows)

    def scores(self, run_id: str, *, per_problem: bool = False) -> list[Score]:
        cond = "problem_id != ''" if per_problem else "problem_id = ''"
        rows = self._db.execute(f"SELECT * FROM scores WHERE run_id=? AND {cond} ORDER BY rowid", (run_id,))
        return [
            Score(
                metric=r["metric"],
                value=r["value"],
                ci_low=r["ci_low"],
                ci_high=r["ci_high"],
                n_problems=r["n_problems"],
                n_samples=r["n_samples"],
                problem_id=r["problem_id"] or None,
            )
            for r in rows
        ]

    def add_event(self, run_id: str, event: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO events (run_id, time, event) VALUES (?,?,?)",
            (run_id, time.time(), json.dumps(event, default=str)),
        )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return [
            {"time": r["time"], **json.loads(r["event"])}
            for r in self._db.execute("SELECT * FROM events WHERE run_id=? ORDER BY seq", (run_id,))
        ]

    def counts(self, run_id: str) -> dict[str, int]:
        """Row counts per table for one run (used by tests and `show`)."""
        return {
            table: self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id=?", (run_id,)).fetchone()[0]
            for table in ("generations", "executions", "scores", "events")
        }

    # ---- helpers ----------------------------------------------------------------------
    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _check_sqlite_header(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise UserError(f"cannot read store {path}: {exc.strerror}") from None
    if header != b"SQLite format 3\x00":
        raise UserError(
            f"{path} is not an SQLite database (it may be another kind of file, or corrupt)",
            hint="pass --store with a new file name; slmbench never overwrites foreign files",
        )


def _is_permission_error(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "readonly" in text or "read-only" in text or "unable to open database file" in text
    )


def _run_from_row(row: sqlite3.Row) -> RunRecord:
    try:
        spec = RunSpec.model_validate_json(row["spec"])
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "spec"
        raise UserError(
            f"run {row['run_id']} in the store has a spec this slmbench cannot read ({where}: {err['msg']})",
            hint="the store was written by another version of slmbench, or damaged; use a new --store",
        ) from None
    return RunRecord(
        run_id=row["run_id"],
        task=row["task"],
        model=row["model"],
        label=row["label"],
        spec=spec,
        n=row["n"],
        status=row["status"],
        dataset_checksum=row["dataset_checksum"],
        environment=json.loads(row["environment"]),
        backend_info=json.loads(row["backend_info"]),
        created=row["created"],
        updated=row["updated"],
    )


def _generation_from_row(r: sqlite3.Row) -> GenerationRecord:
    return GenerationRecord(
        problem_id=r["problem_id"],
        sample=r["sample"],
        raw=r["raw"],
        form=r["form"],
        solution=r["solution"],
        finish_reason=r["finish_reason"],
        usage=Usage(
            prompt_tokens=r["prompt_tokens"],
            completion_tokens=r["completion_tokens"],
            latency_s=r["latency_s"],
            ttft_s=r["ttft_s"],
            peak_memory_bytes=r["peak_memory_bytes"],
            energy_j=r["energy_j"],
            extra=json.loads(r["usage_extra"]),
        ),
    )


def record_to_dict(record: RunRecord) -> dict[str, Any]:
    d = asdict(record)
    d["spec"] = json.loads(record.spec.model_dump_json())
    return d


def iter_chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
