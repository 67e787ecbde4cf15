"""Malformed specs and files: every one is a one-line UserError, never a traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmbench.cli import _build_spec, _parse_ks, _parse_kv
from slmbench.data import read_json, read_jsonl
from slmbench.errors import UserError

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
spec_fields = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values,
        "task": json_values,
        "n": json_values,
        "k": json_values,
        "limit": json_values,
        "shots": json_values,
        "decoding": json_values
        | st.fixed_dictionaries({}, optional={"temperature": json_values, "top_p": json_values}),
        "execution": json_values
        | st.fixed_dictionaries({}, optional={"sandbox": json_values, "timeout_s": json_values}),
        "bootstrap": json_values,
        "unexpected": json_values,
    },
)


def _one_line(exc: UserError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


@settings(max_examples=300, deadline=None)
@given(spec_fields)
def test_any_spec_is_valid_or_a_user_error(fields: dict) -> None:
    try:
        spec = _build_spec(**fields)
    except UserError as exc:
        _one_line(exc)
    else:
        assert spec.n >= 1 and spec.k and spec.run_id()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_option_parsers(text: str) -> None:
    for parse in (_parse_ks, lambda t: _parse_kv(t, "--model-args")):
        try:
            parse(text)
        except UserError as exc:
            _one_line(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_as_jsonl_or_json(tmp_path: Path, blob: bytes, gz: bool) -> None:
    path = tmp_path / ("f.jsonl.gz" if gz else "f.jsonl")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    try:
        rows = list(read_jsonl(path))
        assert all(isinstance(obj, dict) and line >= 1 for line, obj in rows)
    except UserError as exc:
        _one_line(exc)
        assert str(path) in str(exc)
    try:
        read_json(path)
    except UserError as exc:
        _one_line(exc)
