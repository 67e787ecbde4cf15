from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from slmbench.errors import UserError
from slmbench.spec import RunSpec
from slmbench.store import GenerationRecord, Store
from slmbench.types import ExecResult, Score, Usage, Verdict


def _spec(**kw) -> RunSpec:
    return RunSpec(model="reference", task="humaneval", **kw)


def test_same_identity_reopens_the_same_run(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        a = store.begin_run(_spec(n=10), dataset_checksum="abc", environment={})
        b = store.begin_run(_spec(n=20), dataset_checksum="abc", environment={})
        assert a.run_id == b.run_id
        assert store.run(a.run_id).n == 20
        assert len(store.runs()) == 1


def test_writes_are_idempotent(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        run = store.begin_run(_spec(), dataset_checksum="abc", environment={})
        gen = GenerationRecord("P/0", 0, "raw", "continuation", "sol", "stop", Usage(completion_tokens=3))
        assert store.add_generations(run.run_id, [gen]) == 1
        assert store.add_generations(run.run_id, [gen]) == 0
        result = ExecResult(key="k", verdict=Verdict.PASSED, cpu_s=0.1, wall_s=0.2)
        store.add_executions(run.run_id, [("P/0", 0, "test", result)])
        store.add_executions(run.run_id, [("P/0", 0, "test", result)])
        assert store.counts(run.run_id)["generations"] == 1
        assert store.counts(run.run_id)["executions"] == 1
        assert store.usages(run.run_id)[0].completion_tokens == 3
        assert store.executions(run.run_id)[("P/0", 0, "test")].verdict is Verdict.PASSED


def test_scores_are_replaced_as_a_whole(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        run = store.begin_run(_spec(), dataset_checksum="abc", environment={})
        store.replace_scores(run.run_id, [Score("pass@1", 0.5), Score("pass@1", 1.0, problem_id="P/0")])
        store.replace_scores(run.run_id, [Score("pass@1", 0.25)])
        assert [s.value for s in store.scores(run.run_id)] == [0.25]
        assert store.scores(run.run_id, per_problem=True) == []


def test_changed_dataset_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.begin_run(_spec(), dataset_checksum="abc", environment={})
        with pytest.raises(UserError, match="checksum"):
            store.begin_run(_spec(), dataset_checksum="def", environment={})


def test_find_run_by_prefix_and_label(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        run = store.begin_run(_spec(label="mine"), dataset_checksum="abc", environment={})
        assert store.find_run(run.run_id[:12]).run_id == run.run_id
        assert store.find_run("mine").run_id == run.run_id
        with pytest.raises(UserError, match="no run"):
            store.find_run("nothing-like-it")


def test_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(UserError, match="another program"):
        Store(path)
    assert path.read_bytes() == before


def test_non_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(UserError, match="not an SQLite database"):
        Store(path)
    assert path.read_text().startswith("these are my notes")


def test_corrupt_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        run = store.begin_run(_spec(), dataset_checksum="abc", environment={})
        store.add_generations(
            run.run_id,
            [GenerationRecord(f"P/{i}", 0, "x" * 5000, "continuation", "s", "stop", Usage()) for i in range(50)],
        )
    # checkpoint the WAL into the main file, then damage pages past the header
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    for i in range(4096, len(data), 97):
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError):
        Store(path)


def test_read_only_store_is_not_called_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.begin_run(_spec(), dataset_checksum="abc", environment={})
    real_connect = sqlite3.connect

    def read_only(database, **kw):  # what a read-only file, folder or mount gives (tests run as root)
        return real_connect(f"file:{database}?mode=ro", uri=True, **kw)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(UserError, match="cannot write to store") as err:
        Store(path)
    assert "corrupt" not in str(err.value) and "permissions" in str(err.value)


def test_unreadable_run_spec_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        run = store.begin_run(_spec(), dataset_checksum="abc", environment={})
    db = sqlite3.connect(path)
    # a spec written by another version (a field this one does not know), and one damaged
    db.execute("UPDATE runs SET spec = json_set(spec, '$.future_field', 1)")
    db.commit()
    with Store(path) as store, pytest.raises(UserError, match=f"run {run.run_id} .*future_field"):
        store.runs()
    db.execute("UPDATE runs SET spec = '{not json'")
    db.commit()
    db.close()
    with Store(path) as store, pytest.raises(UserError, match="spec this slmbench cannot read"):
        store.find_run(run.run_id)
