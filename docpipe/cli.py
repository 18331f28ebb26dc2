"""The ``docpipe`` command: thin typer commands over the library, rich output, one-line errors.

Nothing heavy is imported at module level, so ``docpipe --help`` and ``docpipe query`` start fast.
Exit codes: 0 all ok, 1 some file failed (or a command error), 2 usage.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(
    help="Read invoices, receipts and scans; land validated, typed fields in DuckDB; ask questions in SQL.\n\n"
    "Start with:  docpipe ingest samples/  then  docpipe query \"SELECT * FROM invoice\"",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

DB_OPT = typer.Option("--db", help="DuckDB file to write/read.", envvar="DOCPIPE_DB")


def _err(msg: str) -> None:
    from rich.console import Console

    from rich.markup import escape

    from .paths import shown

    Console(stderr=True, highlight=False, emoji=False).print(f"[bold red]error:[/] {escape(shown(msg))}",
                                                          soft_wrap=True)  # ":x:" in a value stays text


def _fail(msg: str, code: int = 1) -> typer.Exit:
    _err(msg)
    return typer.Exit(code)


class EngineKind(str, Enum):
    auto = "auto"
    offline = "offline"
    gemma = "gemma"
    openai = "openai"
    vllm = "vllm"


class OutFormat(str, Enum):
    table = "table"
    plain = "plain"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


class ExportFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (walked recursively). PDFs and images "
                                                     "(PNG, JPEG, TIFF incl. multi-page, WEBP, BMP), by content.")],
    schema: Annotated[str, typer.Option("--schema", "-s", help="Built-in schema (invoice, receipt, document), "
                                        "my_schemas.py:Model, or a JSON Schema file.")] = "invoice",
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
    engine: Annotated[EngineKind, typer.Option("--engine", "-e", help="auto picks Gemma if weights and a device "
                                               "are here, a server if DOCPIPE_BASE_URL is set, else offline.")]
    = EngineKind.auto,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Processes for rasterizing and OCR.")]
    = min(2, os.cpu_count() or 1),
    force: Annotated[bool, typer.Option("--force", help="Redo documents already done for this schema and engine.")]
    = False,
    retry_invalid: Annotated[bool, typer.Option("--retry-invalid", help="Also redo documents whose result was "
                                                "invalid (failed ones are always retried).")] = False,
    password: Annotated[Optional[str], typer.Option("--password", help="Password for encrypted PDFs.",
                                                    envvar="DOCPIPE_PDF_PASSWORD")] = None,
    summarize: Annotated[bool, typer.Option("--summarize", help="Ask model engines for a long-context summary "
                                            "(the offline engine always writes an extractive one).")] = False,
    max_pages: Annotated[int, typer.Option("--max-pages", help="Refuse documents longer than this.")] = 2000,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model id or folder (gemma) or served "
                                                 "model name (openai).", envvar="DOCPIPE_MODEL")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL(s), "
                                                    "comma-separated.", envvar="DOCPIPE_BASE_URL")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable holding the "
                                                       "API key [default: OPENAI_API_KEY].")] = None,
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", help="Requests in flight, openai engine "
                                                       "[default: 4, or DOCPIPE_CONCURRENCY / docpipe.toml].")]
    = None,
    image_tokens: Annotated[int, typer.Option("--image-tokens", help="Gemma image token budget per page: "
                                              "70, 140, 280, 560 or 1120.")] = 1120,
    thinking: Annotated[bool, typer.Option("--thinking", help="Let the model think before answering (gemma, and "
                                           "openai servers that support it); thoughts are stored apart.")] = False,
    gpus: Annotated[Optional[str], typer.Option("--gpus", help="One engine per GPU, documents spread over them: "
                                                "N (the first N), all, or indices like 0,2 (cpu:N: N engine "
                                                "processes without a GPU, for tests).", envvar="DOCPIPE_GPUS")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Read documents and store their fields.

    Re-running skips documents already done (same bytes, schema and engine); failed ones are retried.

    Example:  docpipe ingest ~/invoices --schema invoice --workers 2
    """
    from .engines import EngineOptions
    from .errors import DocpipeError
    from .pipeline import IngestOptions
    from .pipeline import ingest as run_ingest
    from .progress import RichProgress, print_report

    if image_tokens not in (70, 140, 280, 560, 1120):
        raise typer.BadParameter("must be one of 70, 140, 280, 560, 1120", param_hint="--image-tokens")
    eopts = EngineOptions(workers=max(1, workers), model=model, image_tokens=image_tokens, thinking=thinking,
                          extra={"base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency})
    opts = IngestOptions(paths=paths, schema=schema, db=db, engine=engine.value, engine_options=eopts,
                         force=force, retry_invalid=retry_invalid, password=password, summarize=summarize,
                         max_pages=max_pages, gpus=gpus)
    progress = RichProgress(enabled=not quiet)
    from .lifeline import exit_code_for_interrupt, terminate_like_interrupt

    terminate_like_interrupt()  # timeout, docker stop, systemd: flush and stop as on Ctrl-C
    try:
        with progress:
            report = run_ingest(opts, progress)
    except DocpipeError as e:
        raise _fail(str(e))
    print_report(report, db)
    if report.interrupted:
        raise typer.Exit(exit_code_for_interrupt())
    if report.any_failed:
        raise typer.Exit(1)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run, e.g. \"SELECT vendor_name, total FROM invoice\".")],
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.table,
    write: Annotated[bool, typer.Option("--allow-write", "--write", help="Allow writes: to the database and, "
                                        "through DuckDB, to files (COPY ... TO). Default: read-only, no file access.")]
    = False,
) -> None:
    """Run SQL against the store: read-only, and no files read or written, unless --allow-write.

    Views: one per schema (invoice, receipt, document), their lists (invoice_line_items, receipt_items),
    problems; tables: documents, pages, extractions, summaries, files, runs.

    Example:  docpipe query --format json "SELECT * FROM invoice"
    """
    from .errors import DocpipeError
    from .output import render_rows
    from .store import Store

    try:
        with Store.open(db, read_only=not write) as store:
            if not write:
                store.seal()
            cols, rows = store.query(sql)
    except DocpipeError as e:
        raise _fail(str(e))
    render_rows(cols, rows, fmt.value)


@app.command()
def show(
    target: Annotated[str, typer.Argument(help="A file (found by its bytes), a path or file name as ingested, or a "
                                               "doc_id (its first characters are enough).")],
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="table (for people) or json.")]
    = OutFormat.table,
) -> None:
    """One document: its paths, status, the fields and line items of each extraction, summary and earlier results.

    Example:  docpipe show samples/invoice_en_classic_acme.pdf
    """
    from .errors import DocpipeError
    from .output import _json_default
    from .showing import find_doc_id, load, render
    from .store import Store

    try:
        with Store.open(db, read_only=True) as store:
            doc = load(store, find_doc_id(store, target))
    except DocpipeError as e:
        raise _fail(str(e))
    if fmt in (OutFormat.json, OutFormat.jsonl):
        print(json.dumps(doc, default=_json_default, ensure_ascii=False, indent=2 if fmt is OutFormat.json else None))
    else:
        render(doc)


@app.command()
def export(
    names: Annotated[Optional[list[str]], typer.Argument(help="Views or tables to export (default: every schema "
                                                         "view, its list views, documents and summaries).")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="File format.")] = ExportFormat.parquet,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")] = Path("export"),
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
) -> None:
    """Write views and tables to Parquet, CSV or JSONL files, one file each.

    Example:  docpipe export invoice invoice_line_items --format csv --out reports/
    """
    from rich.console import Console

    from .errors import DocpipeError
    from .exporting import export_tables

    try:
        written = export_tables(db, names or [], fmt.value, out)
    except DocpipeError as e:
        raise _fail(str(e))
    c = Console()
    for name, path, n in written:
        c.print(f"{name}: {n} rows -> {path}")


@app.command()
def schemas(
    name: Annotated[Optional[str], typer.Argument(help="Show one schema (built-in name, file.py:Model or .json).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON Schema engines are given.")] = False,
) -> None:
    """List the schemas and their fields (descriptions are what a model is told).

    Bring your own:  docpipe ingest contracts/ --schema my_schemas.py:Contract
    """
    from rich.console import Console
    from rich.table import Table

    from . import schemas as sch
    from .errors import DocpipeError

    try:
        infos = [sch.resolve(name)] if name else sch.list_builtin()
    except DocpipeError as e:
        raise _fail(str(e))
    if as_json:
        print(json.dumps({i.name: i.json_schema for i in infos} if len(infos) > 1 else infos[0].json_schema,
                         indent=2))
        return
    c = Console()
    for info in infos:
        t = Table(title=f"{info.name}  (version {info.version}; view: {info.name}"
                  + "".join(f", {info.name}_{n.field}" for n in info.nested) + ")", title_justify="left")
        t.add_column("field")
        t.add_column("type")
        t.add_column("description")
        for col in info.columns:
            t.add_row(col.name, col.sql_type, col.description)
        for n in info.nested:
            for col in n.columns:
                t.add_row(f"{n.field}[].{col.name}", col.sql_type, col.description)
        c.print(t)


@app.command()
def engines(
    model: Annotated[Optional[str], typer.Option("--model", "-m", envvar="DOCPIPE_MODEL")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", envvar="DOCPIPE_BASE_URL")] = None,
) -> None:
    """Show each engine, whether it can run here, and why not."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from . import engines as eng
    from .errors import EngineUnavailable

    opts = eng.EngineOptions(model=model, extra={"base_url": base_url})
    t = Table()
    t.add_column("engine")
    t.add_column("available")
    t.add_column("detail")
    for kind in sorted(eng.registry()):
        try:
            reason = eng.engine_class(kind).unavailable_reason(opts)
        except EngineUnavailable as e:
            reason = str(e)
        t.add_row(kind, "yes" if reason is None else "no", escape(reason or ""))
    try:
        chosen, why = eng.choose("auto", opts)
        t.caption = escape(f"--engine auto would use {chosen}: {why}")
    except EngineUnavailable as e:
        t.caption = escape(str(e))
    Console().print(t)


@app.command()
def status(db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb")) -> None:
    """Counts per schema, engine and status, and every document that is not ok with its reason."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .errors import DocpipeError
    from .paths import shown
    from .store import Store

    try:
        with Store.open(db, read_only=True) as store:
            counts = store.status_counts()
            _, problems = store.query("SELECT path, schema_name, engine, status, reason FROM problems ORDER BY path")
    except DocpipeError as e:
        raise _fail(str(e))
    c = Console()
    t = Table(title="documents by status", title_justify="left")
    for col in ("schema", "engine", "status", "documents"):
        t.add_column(col)
    for row in counts:
        t.add_row(*[str(x) for x in row])
    c.print(t)
    if problems:
        p = Table(title="not ok (re-run `docpipe ingest` retries failed ones)", title_justify="left")
        for col in ("path", "schema", "engine", "status", "reason"):
            p.add_column(col, overflow="fold")
        for row in problems:
            p.add_row(*[escape(shown(x)) if x is not None else "" for x in row])
        c.print(p)


@app.command(name="eval")
def eval_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of documents named in the truth file.")],
    truth: Annotated[Optional[Path], typer.Option("--truth", help="truth.jsonl (default: FOLDER/truth.jsonl).")]
    = None,
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
    schema: Annotated[str, typer.Option("--schema", "-s")] = "invoice",
    engine: Annotated[EngineKind, typer.Option("--engine", "-e")] = EngineKind.auto,
    workers: Annotated[int, typer.Option("--workers", "-w")] = min(2, os.cpu_count() or 1),
    model: Annotated[Optional[str], typer.Option("--model", "-m", envvar="DOCPIPE_MODEL")] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.table,
    mismatches: Annotated[bool, typer.Option("--mismatches", help="Also list every wrong field: file, field, "
                                             "truth, extracted.")] = False,
    bands: Annotated[bool, typer.Option("--bands", help="Also print accuracy by confidence band and what the "
                                        "cross-checks caught (always shown in table format).")] = False,
) -> None:
    """Per-field accuracy against ground truth (ingests what is not yet in the store first).

    truth.jsonl has one {"file", "doc_type", "fields": {...}} per line; absent fields are not scored.
    Numbers match within 0.01, dates exactly, names after folding case, punctuation and spaces.

    Example:  docpipe eval ../shared/devset/parsee_invoices
    """
    from .engines import EngineOptions
    from .errors import DocpipeError
    from .evaluate import evaluate
    from .output import render_rows
    from .pipeline import IngestOptions
    from .pipeline import ingest as run_ingest

    if not folder.exists():
        raise _fail(f"{folder}: path does not exist")
    truth = truth or folder / "truth.jsonl"
    if not truth.exists():
        raise _fail(f"no truth file at {truth}: pass --truth")
    try:
        opts = IngestOptions(paths=[folder], schema=schema, db=db, engine=engine.value,
                             engine_options=EngineOptions(workers=max(1, workers), model=model))
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
    if result.missing:
        raise _fail(f"{len(result.missing)} truth file(s) without an ok/invalid extraction (scored as wrong): "
                    f"{', '.join(result.missing[:5])}")


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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        from .lifeline import exit_code_for_interrupt

        _err("interrupted")
        sys.exit(exit_code_for_interrupt())


if __name__ == "__main__":
    main()
