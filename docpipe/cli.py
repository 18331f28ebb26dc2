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

    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)


def _fail(msg: str, code: int = 1) -> typer.Exit:
    _err(msg)
    return typer.Exit(code)


class EngineKind(str, Enum):
    auto = "auto"
    offline = "offline"
    gemma = "gemma"
    openai = "openai"


class OutFormat(str, Enum):
    table = "table"
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    quantize: Annotated[Optional[str], typer.Option("--quantize", help="Gemma weights: none (bf16), fp8, int8, "
                                                    "int4, or auto (bf16 where it fits the GPU, else the most "
                                                    "precise mode that does) [default: auto].")] = None,
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
                          extra={"base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency,
                                 "quantize": quantize})
    opts = IngestOptions(paths=paths, schema=schema, db=db, engine=engine.value, engine_options=eopts,
                         force=force, retry_invalid=retry_invalid, password=password, summarize=summarize,
                         max_pages=max_pages)
    progress = RichProgress(enabled=not quiet)
    try:
        with progress:
            report = run_ingest(opts, progress)
    except DocpipeError as e:
        raise _fail(str(e))
    print_report(report, db)
    if report.interrupted:
        raise typer.Exit(130)
    if report.any_failed:
        raise typer.Exit(1)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run, e.g. \"SELECT vendor_name, total FROM invoice\".")],
    db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb"),
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.table,
    write: Annotated[bool, typer.Option("--write", help="Open read-write (default is read-only).")] = False,
) -> None:
    """Run SQL against the store (read-only by default).

    Views: one per schema (invoice, receipt, document), their lists (invoice_line_items, receipt_items),
    problems; tables: documents, pages, extractions, summaries, files, runs.

    Example:  docpipe query --format json "SELECT * FROM invoice"
    """
    from .errors import DocpipeError
    from .output import render_rows
    from .store import Store

    try:
        with Store.open(db, read_only=not write) as store:
            cols, rows = store.query(sql)
    except DocpipeError as e:
        raise _fail(str(e))
    render_rows(cols, rows, fmt.value)


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


@app.command()
def status(db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb")) -> None:
    """Counts per schema, engine and status, and every document that is not ok with its reason."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .errors import DocpipeError
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
            p.add_row(*[escape(str(x)) if x is not None else "" for x in row])
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
    if result.missing:
        _err(f"{len(result.missing)} truth file(s) without an ok/invalid extraction: {', '.join(result.missing[:5])}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
