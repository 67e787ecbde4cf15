"""Samples files: format detection, normalisation to programs, every error, and the two no-model backends."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from slmbench.backends import BACKENDS, create_backend
from slmbench.backends.base import GenerationRequest
from slmbench.backends.reference import ReferenceBackend
from slmbench.backends.replay import ReplayBackend
from slmbench.data import DataSource
from slmbench.errors import UserError
from slmbench.samples import detect_format, read_samples
from slmbench.spec import DecodingSpec
from slmbench.tasks.humaneval import HumanEval


@pytest.fixture(scope="module")
def task() -> HumanEval:
    return HumanEval(DataSource())


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


# ---- the published files ------------------------------------------------------------------
def test_published_files_are_detected_and_read_as_their_evaluators_ran_them(
    generations_dir: Path, task: HumanEval
) -> None:
    neo = generations_dir / "gpt-code-clippy" / "gpt-neo-125M_human_eval.jsonl"
    sf = read_samples(neo, task)
    assert sf.format == "human-eval" and sf.n_min == sf.n_max == 10 and len(sf.samples) == 164
    assert sf.sha256 == "d600cb65724d7e89ba2f58f47eb664064a59248f1e70dcb996b55ee41fba5000"
    first = json.loads(neo.read_text().splitlines()[0])
    p0 = task.problem("HumanEval/0")
    # prompt + completion, the completion (which repeats the prompt) left untouched, special tokens kept
    assert sf.samples["HumanEval/0"][0] == (p0.prompt + first["completion"], "program")
    assert sum("<|endoftext|>" in t for v in sf.samples.values() for t, _ in v) == 166

    qwen = generations_dir / "qwen2.5-coder" / "1.5b-base" / "evalplus" / "humaneval" / "generated.jsonl"
    sq = read_samples(qwen, task)
    assert sq.format == "human-eval" and sq.n_max == 1  # EvalPlus rows with completion: prompt + completion
    first = json.loads(qwen.read_text().splitlines()[0])
    assert sq.samples["HumanEval/0"] == [(p0.prompt + first["completion"], "program")]
    assert read_samples(qwen, task, "evalplus").samples == sq.samples

    codellama = generations_dir / "codellama-34b-instruct" / "codellama-34b-instruct_n10.jsonl"
    sc = read_samples(codellama, task)
    assert sc.format == "human-eval" and sc.n_min == 10


# ---- detection and normalisation -------------------------------------------------------------
def test_evalplus_solution_rows_are_programs_and_completion_rows_get_the_prompt(
    tmp_path: Path, task: HumanEval
) -> None:
    p1 = task.problem("HumanEval/1")
    path = write_jsonl(
        tmp_path / "evalplus.jsonl",
        [
            {"task_id": "HumanEval/1", "solution": "def separate_paren_groups(s): return []"},
            {"task_id": "HumanEval/1", "completion": "    return []\n"},
            {"task_id": "HumanEval/0", "solution": "A", "completion": "ignored"},
        ],
    )
    assert detect_format(path) == "evalplus"
    sf = read_samples(path, task)
    assert sf.format == "evalplus"
    assert sf.samples["HumanEval/1"] == [
        ("def separate_paren_groups(s): return []", "program"),
        (p1.prompt + "    return []\n", "program"),
    ]
    assert sf.samples["HumanEval/0"] == [("A", "program")]


def test_bigcode_generations_json_follows_dataset_order(tmp_path: Path, task: HumanEval) -> None:
    path = tmp_path / "generations.json"
    path.write_text(json.dumps([["prog 0a", "prog 0b"], ["prog 1a", "prog 1b", "prog 1c"]], indent=2))
    assert detect_format(path) == "bigcode"
    sf = read_samples(path, task)
    assert sf.format == "bigcode"
    assert sf.samples == {
        "HumanEval/0": [("prog 0a", "program"), ("prog 0b", "program")],
        "HumanEval/1": [("prog 1a", "program"), ("prog 1b", "program"), ("prog 1c", "program")],
    }
    assert sf.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_samples_are_numbered_in_file_order_and_gzip_is_read(tmp_path: Path, task: HumanEval) -> None:
    rows = [{"task_id": f"HumanEval/{i % 2}", "completion": f"# {i}\n"} for i in range(6)]
    path = tmp_path / "s.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    sf = read_samples(path, task)
    p0 = task.problem("HumanEval/0")
    assert [t for t, _ in sf.samples["HumanEval/0"]] == [p0.prompt + f"# {i}\n" for i in (0, 2, 4)]


def test_format_can_be_forced(tmp_path: Path, task: HumanEval) -> None:
    path = write_jsonl(tmp_path / "both.jsonl", [{"task_id": "HumanEval/0", "solution": "S", "completion": "C"}])
    assert read_samples(path, task).samples["HumanEval/0"] == [("S", "program")]
    forced = read_samples(path, task, "human-eval")
    assert forced.format == "human-eval"
    assert forced.samples["HumanEval/0"] == [(task.problem("HumanEval/0").prompt + "C", "program")]


# ---- errors: one line, file and line, what to do ----------------------------------------------
@pytest.mark.parametrize(
    ("lines", "fmt", "pattern"),
    [
        (
            ['{"task_id": "HumanEval/0", "completion": "x"}', '{"task_id": "HumanEval/0", "completion": '],
            None,
            r"bad\.jsonl:2: not valid JSON",
        ),
        (
            ['{"task_id": "HumanEval/0", "completion": "x"}', '{"task_id": "HumanEval/999", "completion": "x"}'],
            None,
            r"bad\.jsonl:2: unknown task id 'HumanEval/999' for task humaneval",
        ),
        (['{"task_id": "Mbpp/2", "completion": "x"}'], None, r"bad\.jsonl:1: unknown task id 'Mbpp/2'"),
        (['{"task_id": 0, "completion": "x"}'], None, r"bad\.jsonl:1: unknown task id 0"),
        (
            ['{"task_id": "HumanEval/0", "completion": "x"}', '{"completion": "x"}'],
            None,
            r"bad\.jsonl:2: missing field task_id",
        ),
        (
            ['{"task_id": "HumanEval/0", "completion": "x"}', '{"task_id": "HumanEval/0", "text": "x"}'],
            None,
            r"bad\.jsonl:2: missing field completion",
        ),
        (['{"task_id": "HumanEval/0", "solution": "x"}'], "human-eval", r"bad\.jsonl:1: missing field completion"),
        (
            ['{"task_id": "HumanEval/0", "text": "x"}'],
            "evalplus",
            r"bad\.jsonl:1: missing field solution or completion",
        ),
        (
            ['{"task_id": "HumanEval/0", "completion": ["x"]}'],
            None,
            r"bad\.jsonl:1: field completion must be a string, found list",
        ),
        (['{"task_id": "HumanEval/0", "completion": "x"}', '["x"]'], None, r"bad\.jsonl:2: expected a JSON object"),
        (["", "   ", ""], None, r"bad\.jsonl: the samples file is empty"),
        ([], None, r"bad\.jsonl: the samples file is empty"),
        (["hello"], None, r"bad\.jsonl:1: not a samples file"),
        (['[["a"]]'], "human-eval", r"bad\.jsonl:1: a JSON list, not human-eval JSON lines.*--format bigcode"),
        (
            ['{"task_id": "HumanEval/0", "completion": "x"}', '{"task_id": "HumanEval/0", "completion": "x"}'],
            "bigcode",
            r"bad\.jsonl:2: not valid JSON.*drop --format bigcode",
        ),
        (['{"HumanEval/0": ["x"]}'], "bigcode", r"bad\.jsonl: expected a JSON list .* found dict"),
        (['[["a"], "b"]'], None, r"bad\.jsonl: entry 1 \(HumanEval/1\) must be a list of programs, found str"),
        (['[["a", 3]]'], None, r"bad\.jsonl: entry 0 \(HumanEval/0\) sample 1 must be a string, found int"),
        (["[" + ",".join(['["a"]'] * 165) + "]"], None, r"bad\.jsonl: 165 entries but task humaneval has 164 problems"),
    ],
)
def test_malformed_samples_give_one_line_errors(
    tmp_path: Path, task: HumanEval, lines: list[str], fmt: str | None, pattern: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(UserError) as excinfo:
        read_samples(path, task, fmt)
    assert re.search(pattern, one_line_error(excinfo)), str(excinfo.value)


def test_missing_file_and_unknown_format(tmp_path: Path, task: HumanEval) -> None:
    with pytest.raises(UserError, match="does not exist") as excinfo:
        read_samples(tmp_path / "nope.jsonl", task)
    one_line_error(excinfo)
    path = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}])
    with pytest.raises(UserError, match="unknown samples format 'mbpp'.*human-eval, evalplus, bigcode"):
        read_samples(path, task, "mbpp")
    with pytest.raises(UserError, match="unknown samples format"):
        ReplayBackend("replay", samples=path, samples_format="jsonl", task=task)
    with pytest.raises(UserError, match="needs a samples file"):
        ReplayBackend("replay", task=task)


# ---- the replay backend ----------------------------------------------------------------------
def requests_for(task: HumanEval, ids: list[str], samples: tuple[int, ...]) -> list[GenerationRequest]:
    return [
        GenerationRequest(problem=task.problem(i), prompt=task.prompt(task.problem(i)), samples=samples) for i in ids
    ]


def test_replay_yields_requested_samples_in_file_order(tmp_path: Path, task: HumanEval) -> None:
    rows = [{"task_id": f"HumanEval/{i % 2}", "solution": f"prog {i}"} for i in range(8)]
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    backend = create_backend("replay", samples=path, task=task)
    assert isinstance(backend, ReplayBackend) and BACKENDS.get("replay") is ReplayBackend
    out = list(backend.generate(requests_for(task, ["HumanEval/0", "HumanEval/1"], (1, 2)), DecodingSpec()))
    got = {(c.problem_id, c.sample): c for c in out}
    assert set(got) == {("HumanEval/0", 1), ("HumanEval/0", 2), ("HumanEval/1", 1), ("HumanEval/1", 2)}
    assert got[("HumanEval/0", 1)].text == "prog 2" and got[("HumanEval/1", 2)].text == "prog 5"
    assert all(c.form == "program" and c.finish_reason == "replay" for c in out)
    assert all(c.usage.latency_s is None and c.usage.completion_tokens is None for c in out)
    info = backend.info()
    assert info.extra["format"] == "evalplus" and info.extra["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_replay_target_can_be_the_samples_file(tmp_path: Path, task: HumanEval) -> None:
    path = write_jsonl(tmp_path / "mine.jsonl", [{"task_id": "HumanEval/0", "completion": "    return True\n"}])
    backend = create_backend(f"replay:{path}", task=task)
    (c,) = backend.generate(requests_for(task, ["HumanEval/0"], (0,)), DecodingSpec())
    assert c.text == task.problem("HumanEval/0").prompt + "    return True\n"


def test_replay_with_too_few_samples_fails_before_yielding_anything(tmp_path: Path, task: HumanEval) -> None:
    rows = [{"task_id": "HumanEval/0", "completion": "x"}] * 10 + [{"task_id": "HumanEval/1", "completion": "x"}] * 3
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    backend = ReplayBackend("replay", samples=path, task=task)
    produced = []
    with pytest.raises(UserError, match=r"s\.jsonl: HumanEval/1 has 3 samples but n=10 needs 10.*--n 3") as excinfo:
        for c in backend.generate(requests_for(task, ["HumanEval/0", "HumanEval/1"], tuple(range(10))), DecodingSpec()):
            produced.append(c)
    one_line_error(excinfo)
    assert produced == []
    with pytest.raises(UserError, match=r"no samples for 1 of 3 problems \(HumanEval/2\)"):
        list(backend.generate(requests_for(task, ["HumanEval/0", "HumanEval/1", "HumanEval/2"], (0,)), DecodingSpec()))
    # n=3 is enough for both: extra samples of HumanEval/0 are ignored
    out = list(backend.generate(requests_for(task, ["HumanEval/0", "HumanEval/1"], (0, 1, 2)), DecodingSpec()))
    assert len(out) == 6


# ---- the reference backend -------------------------------------------------------------------
def test_reference_backend_emits_the_tasks_reference(task: HumanEval) -> None:
    backend = create_backend("reference")
    assert isinstance(backend, ReferenceBackend)
    p = task.problem("HumanEval/3")
    text, form = task.reference_completion(p)
    req = GenerationRequest(problem=p, prompt=task.prompt(p), samples=(0, 4), reference=text, reference_form=form)
    out = list(backend.generate([req], DecodingSpec()))
    assert [(c.problem_id, c.sample, c.text, c.form) for c in out] == [
        ("HumanEval/3", 0, text, "continuation"),
        ("HumanEval/3", 4, text, "continuation"),
    ]
    assert all(c.usage.latency_s is None and c.usage.peak_memory_bytes is None for c in out)
    prog_req = GenerationRequest(
        problem=p, prompt="", samples=(0,), reference="def f(): pass", reference_form="program"
    )
    (c,) = backend.generate([prog_req], DecodingSpec())
    assert c.form == "program" and c.text == "def f(): pass"


# ---- the default n for `slmbench score` ------------------------------------------------------
def test_samples_per_task_is_the_count_every_task_has_read_without_a_task(
    tmp_path: Path, generations_dir: Path
) -> None:
    from slmbench.backends.replay import samples_per_task  # the name the CLI imports

    neo = generations_dir / "gpt-code-clippy" / "gpt-neo-125M_human_eval.jsonl"
    assert samples_per_task(neo) == 10
    rows = [{"task_id": "HumanEval/0", "completion": "x"}] * 3 + [{"task_id": "HumanEval/1", "completion": "x"}] * 3
    assert samples_per_task(write_jsonl(tmp_path / "s.jsonl", rows)) == 3
    big = tmp_path / "generations.json"
    big.write_text(json.dumps([["a", "b"], ["c", "d"]]))
    assert samples_per_task(big) == 2
    assert samples_per_task(big, "bigcode") == 2
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"task_id": "HumanEval/0", "completion": "x"}', "{oops"])
    with pytest.raises(UserError, match=r"bad\.jsonl:2: not valid JSON"):
        samples_per_task(bad)
    big.write_text(json.dumps([["a"], [1]]))
    with pytest.raises(UserError, match=r"generations\.json: entry 1 sample 0 must be a string, found int"):
        samples_per_task(big)
    with pytest.raises(UserError, match="the samples file is empty"):
        samples_per_task(write_jsonl(tmp_path / "empty.jsonl", []))
    with pytest.raises(UserError, match="does not exist"):
        samples_per_task(tmp_path / "nope.jsonl")


def test_unequal_sample_counts_need_an_explicit_n(tmp_path: Path) -> None:
    """Defaulting n to the smallest count dropped samples without a word (human-eval scores them
    all); a greedy file with one duplicated row was silently scored on its first copy."""
    from slmbench.backends.replay import samples_per_task

    rows = [{"task_id": "HumanEval/0", "completion": "x"}] * 5 + [{"task_id": "HumanEval/1", "completion": "x"}] * 3
    with pytest.raises(
        UserError,
        match=r"s\.jsonl: tasks have different numbers of samples \(HumanEval/1 has 3, "
        r"HumanEval/0 has 5\)",
    ) as info:
        samples_per_task(write_jsonl(tmp_path / "s.jsonl", rows))
    assert "--n 3" in (info.value.hint or "")
    dup = [{"task_id": "HumanEval/0", "completion": "a"}, {"task_id": "HumanEval/1", "completion": "b"}]
    with pytest.raises(UserError, match="different numbers of samples"):
        samples_per_task(write_jsonl(tmp_path / "dup.jsonl", [*dup, dup[0]]))
    big = tmp_path / "generations.json"
    big.write_text(json.dumps([["a", "b"], ["c", "d", "e"]]))
    with pytest.raises(UserError, match=r"entry 0 has 2, entry 1 has 3"):
        samples_per_task(big)


def test_bom_and_gzip_without_suffix_are_read(tmp_path: Path, data_dir: Path) -> None:
    """A UTF-8 byte-order mark and a gzipped file without ``.gz`` were rejected as "not a samples file"."""
    task = HumanEval(DataSource(data_dir=data_dir))
    lines = "".join(json.dumps({"task_id": f"HumanEval/{i}", "completion": f"  return {i}\n"}) + "\n" for i in range(2))
    bom = tmp_path / "bom.jsonl"
    bom.write_text(lines, encoding="utf-8-sig")
    packed = tmp_path / "packed.jsonl"
    packed.write_bytes(gzip.compress(lines.encode()))
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(lines.replace("\n", "\r\n").encode())
    for path in (bom, packed, crlf):
        sf = read_samples(path, task)
        assert sf.format == "human-eval" and sf.n_min == sf.n_max == 1, path
        assert sf.samples["HumanEval/1"][0][0] == task.problem("HumanEval/1").prompt + "  return 1\n", path
    big = tmp_path / "generations.json"
    big.write_text(json.dumps([["x"], ["y"]]), encoding="utf-8-sig")
    sf = read_samples(big, task)
    assert sf.format == "bigcode" and sf.samples["HumanEval/1"] == [("y", "program")]


def test_integer_task_ids_name_mbpp_problems(tmp_path: Path, data_dir: Path) -> None:
    """MBPP numbers its tasks with ints; a row with ``"task_id": 11`` was "unknown task id 11
    (ids look like '11')"."""
    from slmbench.tasks.mbpp import MBPP

    task = MBPP(DataSource(data_dir=data_dir))
    path = write_jsonl(tmp_path / "mbpp.jsonl", [{"task_id": 11, "completion": "pass\n"}])
    sf = read_samples(path, task)
    assert list(sf.samples) == ["11"] and sf.samples["11"][0][0] == task.problem("11").prompt + "pass\n"
    with pytest.raises(UserError, match=r"mbpp\.jsonl:1: unknown task id True"):
        read_samples(write_jsonl(tmp_path / "mbpp.jsonl", [{"task_id": True, "completion": "x"}]), task)


@pytest.mark.parametrize("name", ["corrupt.jsonl.gz", "corrupt.jsonl", "generations.json.gz"])
def test_a_corrupt_gzip_is_a_user_error(tmp_path: Path, data_dir: Path, name: str) -> None:
    """A damaged gzip (a truncated download, a flipped byte) raised zlib.error, a traceback."""
    from slmbench.data import read_json, read_jsonl

    packed = bytearray(gzip.compress(b'{"task_id": "HumanEval/0", "completion": "x"}\n' * 50, mtime=0))
    packed[10] = 0xFF  # the first deflate block header: "invalid block type"
    path = tmp_path / name
    path.write_bytes(bytes(packed))
    task = HumanEval(DataSource(data_dir=data_dir))
    for read in (lambda: read_samples(path, task), lambda: list(read_jsonl(path)), lambda: read_json(path)):
        with pytest.raises(UserError, match=re.escape(str(path))) as info:
            read()
        one_line_error(info)
    with pytest.raises(UserError, match=re.escape(str(path))):
        read_samples(path, task, "bigcode")


def test_data_source_accepts_a_str_directory(data_dir: Path) -> None:
    """``DataSource(data_dir="...")`` raised TypeError (str / str) on the first lookup."""
    source = DataSource(data_dir=str(data_dir))
    assert source.data_dir == data_dir
    assert source.find("mbpp/mbpp.jsonl") == data_dir / "mbpp" / "mbpp.jsonl"
