"""Commands for setting up and checking docpipe: ``engines`` (what can run here), ``config`` (the effective
settings), ``eval`` (accuracy against a truth file) and ``review`` (the local page for checking values).

They register on ``cli.app`` when ``cli`` is imported; the daily commands (ingest, query, show, export, status,
schemas) stay in ``cli``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli import DB_OPT, SET_OPT, OutFormat, _fail, _settings, app


@app.command()
def engines(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model to check for: a Gemma id or folder, "
                                                 "or a served model name.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL(s) to ask "
                                                    "whether they answer and serve --model.")] = None,
) -> None:
    """Show each engine, whether it can run here, and why not (a server is asked for its models).

    Example:  docpipe engines --base-url http://127.0.0.1:8000/v1 --model google/gemma-4-E4B-it
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from . import engines as eng
    from .errors import DocpipeError, EngineUnavailable

    try:
        opts = _settings(None, model=model, base_url=base_url).engine_options()
    except DocpipeError as e:
        raise _fail(str(e))
    t = Table()
    t.add_column("engine")
    t.add_column("available")
    t.add_column("detail")
    for kind in sorted(eng.registry()):
        detail = ""
        try:
            cls = eng.engine_class(kind)
            reason = cls.unavailable_reason(opts)
            if reason is None and hasattr(cls, "check_server"):  # a server: ask it, rather than assume
                ok, detail = cls.check_server(opts)
                reason = None if ok else detail
        except EngineUnavailable as e:
            reason = str(e)
        t.add_row(kind, "yes" if reason is None else "no", escape(reason or detail))
    try:
        chosen, why = eng.choose("auto", opts)
        t.caption = escape(f"--engine auto would use {chosen}: {why}")
    except EngineUnavailable as e:
        t.caption = escape(str(e))
    Console().print(t)
    _gemma_fits(Console())


def _gemma_fits(console: Any) -> None:
    """The Gemma checkpoints by --quantize mode: GiB of weights, and whether they fit this machine's GPU."""
    try:
        from .engines.gemma.quantize import card, fits_table
    except ImportError:
        return
    from rich.table import Table

    gpu, capability = card()
    where = f"GPU of {gpu / 2**30:.0f} GiB" if gpu else "no CUDA GPU here"
    t = Table(title=f"gemma --quantize: weights and fit ({where})", title_justify="left")
    for col in ("model", "mode", "weights"):
        t.add_column(col)
    for row in fits_table(gpu, capability):
        t.add_row(*row)
    console.print(t)



@app.command(name="eval")
def eval_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of documents named in the truth file.")],
    truth: Annotated[Path | None, typer.Option("--truth", help="truth.jsonl (default: FOLDER/truth.jsonl).")]
    = None,
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
    schema: Annotated[str | None, typer.Option("--schema", "-s", help="Schema the truth file's fields belong "
                                                  "to (default: invoice).")] = None,
    engine: Annotated[str | None, typer.Option("--engine", "-e", help="Engine to ingest and score with.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Processes for rasterizing and OCR.")]
    = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id or folder (gemma) or served model "
                                                 "name (openai).")] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.table,
    mismatches: Annotated[bool, typer.Option("--mismatches", help="Also list every wrong field: file, field, "
                                             "truth, extracted.")] = False,
    bands: Annotated[bool, typer.Option("--bands", help="Also print accuracy by confidence band and what the "
                                        "cross-checks caught (always shown in table format).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Read every document again instead of scoring what an "
                                        "earlier run stored (after an upgrade or a settings change).")] = False,
) -> None:
    """Per-field accuracy against ground truth (ingests what is not yet in the store first).

    truth.jsonl has one {"file", "doc_type", "fields": {...}} per line; absent fields are not scored.
    Numbers match within 0.01, dates exactly, names after folding case, punctuation and spaces.

    Example:  docpipe eval ../shared/devset/parsee_invoices
    """
    from .api import ingest_options
    from .errors import DocpipeError
    from .evaluate import evaluate
    from .models import Status
    from .output import render_rows
    from .pipeline import ingest as run_ingest

    if not folder.exists():
        raise _fail(f"{folder}: path does not exist")
    truth = truth or folder / "truth.jsonl"
    if not truth.exists():
        raise _fail(f"no truth file at {truth}: pass --truth")
    try:
        opts = ingest_options([folder], settings=_settings(None, schema=schema, db=db, engine=engine, model=model,
                                                           workers=None if workers is None else max(1, workers)),
                              force=force)
        report = run_ingest(opts)
        result = evaluate(db, folder, truth, report.schema, report.engine)
    except DocpipeError as e:
        raise _fail(str(e))
    cols = ["field", "correct", "scored", "accuracy"]
    rows: list[tuple[Any, ...]] = [(f, s.correct, s.total, round(s.accuracy, 3)) for f, s in result.fields.items()]
    rows.append(("ALL", result.correct, result.total, round(result.accuracy, 3)))
    render_rows(cols, rows, fmt.value, title=f"{folder} ({report.engine}, {len(result.documents)} documents)")
    if mismatches:
        render_rows(["file", "field", "truth", "extracted"],
                    [(f, n, json.dumps(t, ensure_ascii=False), json.dumps(p, ensure_ascii=False))
                     for f, n, t, p in result.mismatches], fmt.value, title="wrong fields")
    if bands or fmt is OutFormat.table:
        _print_calibration(db, folder, truth, report.schema, report.engine, fmt.value)
    if earlier := report.counts.get(Status.SKIPPED.value, 0):
        print(f"{earlier} document(s) scored as an earlier run in {db} stored them; --force reads them again",
              file=sys.stderr)
    if result.missing:
        raise _fail(f"{len(result.missing)} truth file(s) without an ok/invalid extraction (scored as wrong): "
                    f"{', '.join(result.missing[:5])}")



@app.command()
def config(
    set_: Annotated[list[str] | None, SET_OPT] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {name: {value, from}} as JSON.")] = False,
) -> None:
    """Print every setting, its effective value and where it came from: flag, env, toml or default.

    The first one set wins: --set NAME=VALUE (or an ingest flag), a DOCPIPE_* variable, docpipe.toml
    (or the file DOCPIPE_CONFIG names), the default.

    Example:  DOCPIPE_GEMMA='{"batch_size": 16}' docpipe config --set engine=gemma
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .errors import DocpipeError

    try:
        rows = _settings(set_).explain()
    except DocpipeError as e:
        raise _fail(str(e))
    if as_json:
        print(json.dumps({r.name: {"value": r.value, "from": r.origin} for r in rows}, indent=2, default=str))
        return
    t = Table()
    for col in ("setting", "value", "from", "what it does"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r.name, escape(json.dumps(r.value, default=str)), r.origin, escape(r.description))
    Console().print(t)



def _print_calibration(db: Path, folder: Path, truth: Path, schema: str, engine: str, fmt: str) -> None:
    """Accuracy by confidence band and what the checks caught (the evidence's calibration)."""
    from .evidence.calibration import calibrate
    from .output import render_rows

    cal = calibrate(db, folder, truth, schema, engine)
    render_rows(["confidence", "right", "values", "accuracy"],
                [(f"{b.low:.1f}-{min(b.high, 1.0):.1f}", b.right, b.total, round(b.accuracy, 3))
                 for b in cal.bands if b.total], fmt, title="accuracy by confidence band")
    render_rows(["wrong values", "caught by a failed check", "right values", "flagged by a failed check"],
                [(cal.wrong, cal.caught, cal.right, cal.flagged_right)], fmt, title="cross-checks")


@app.command()
def review(
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind (only this machine by default).")]
    = "127.0.0.1",
    read_only: Annotated[bool, typer.Option("--read-only", help="Show, never save corrections.")] = False,
) -> None:
    """A local web page to check values against their page: boxes, confidence, checks, corrections.

    Corrections go to the append-only table `corrections`; the schema views show them.

    Example:  docpipe review --db docpipe.duckdb   (then open http://127.0.0.1:8765)
    """
    try:
        from .review.app import serve
    except ImportError as e:
        raise _fail(f"docpipe review needs the review extra: pip install 'docpipe[review]' ({e})")
    from .errors import DocpipeError
    from .store import Store

    try:
        Store.open(db, read_only=True).close()
    except DocpipeError as e:
        raise _fail(str(e))
    print(f"docpipe review: http://{host}:{port}  ({db}{', read-only' if read_only else ''}; Ctrl-C stops)")
    serve(db, host=host, port=port, read_only=read_only)
