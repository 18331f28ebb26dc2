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
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Read invoices, receipts and scans; land validated, typed fields in DuckDB; ask questions in SQL.\n\n"
    "Start with:  docpipe ingest samples/  then\n\n"
    "docpipe query \"SELECT vendor_name, invoice_date, total, currency FROM invoice ORDER BY invoice_date\"",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("docpipe")
        except PackageNotFoundError:  # run from a source tree that was never installed
            v = "unknown (not installed)"
        print(f"docpipe {v}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print docpipe's version and exit.")] = False,
) -> None:
    """Read invoices, receipts and scans; land validated, typed fields in DuckDB; ask questions in SQL."""


def _settings_db(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """--db not given: the settings' database (DOCPIPE_DB, docpipe.toml), so every command reads what ingest wrote."""
    source = ctx.get_parameter_source(param.name or "db")
    if source is None or source.name != "DEFAULT":  # typer may carry its own click: compare by name
        return value
    if not Path(os.environ.get("DOCPIPE_CONFIG") or "docpipe.toml").is_file():
        return value  # nothing but the default to find, and `docpipe query` starts without loading Settings
    from .config import Settings
    from .errors import DocpipeError

    try:
        return Settings.load().db
    except DocpipeError as e:
        raise _fail(str(e)) from None


DB_OPT = typer.Option("--db", help="DuckDB file to write/read (default: docpipe.duckdb, or docpipe.toml's db).",
                      envvar="DOCPIPE_DB", callback=_settings_db)
SET_OPT = typer.Option("--set", help="Any setting as NAME=VALUE (VALUE read as JSON, else as text), e.g. "
                       "--set batch_size=32 --set timeout_s=600; `docpipe config` lists them.")


def _err(msg: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    from .paths import shown

    Console(stderr=True, highlight=False, emoji=False).print(f"[bold red]error:[/] {escape(shown(msg))}",
                                                          soft_wrap=True)  # ":x:" in a value stays text


def _fail(msg: str, code: int = 1) -> typer.Exit:
    _err(msg)
    return typer.Exit(code)


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
    schema: Annotated[str | None, typer.Option("--schema", "-s", help="Built-in schema (invoice, receipt, "
                                                  "document), my_schemas.py:Model, or a JSON Schema file "
                                                  "(default: invoice).")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file to write (default: docpipe.duckdb, or "
                                               "DOCPIPE_DB / docpipe.toml).")] = None,
    engine: Annotated[str | None, typer.Option("--engine", "-e", help="auto, offline, gemma, openai or a plugin's "
                                                  "(docpipe engines). auto picks Gemma if weights and a device are "
                                                  "here, a server if one is configured, else offline.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Processes for rasterizing and OCR "
                                                   "(default: 2).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo documents already done for this schema and engine.")]
    = False,
    retry_invalid: Annotated[bool, typer.Option("--retry-invalid", help="Also redo documents whose result was "
                                                "invalid (failed ones are always retried).")] = False,
    password: Annotated[str | None, typer.Option("--password", help="Password for encrypted PDFs.",
                                                    envvar="DOCPIPE_PDF_PASSWORD")] = None,
    summarize: Annotated[bool, typer.Option("--summarize", help="Ask model engines for a long-context summary "
                                            "(the offline engine always writes an extractive one).")] = False,
    max_pages: Annotated[int | None, typer.Option("--max-pages", help="Refuse documents longer than this "
                                                     "(default: 2000).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id or folder (gemma) or served "
                                                 "model name (openai); or DOCPIPE_MODEL.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL(s), "
                                                    "comma-separated; or DOCPIPE_BASE_URL.")] = None,
    api_key_env: Annotated[str | None, typer.Option("--api-key-env", help="Environment variable holding the "
                                                       "API key (default: OPENAI_API_KEY).")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Requests in flight, openai engine "
                                                       "(default: 4, or DOCPIPE_CONCURRENCY / docpipe.toml).")]
    = None,
    image_tokens: Annotated[int | None, typer.Option("--image-tokens", help="Gemma image token budget per "
                                                        "page: 70, 140, 280, 560 or 1120 (default: 1120).")] = None,
    thinking: Annotated[bool, typer.Option("--thinking", help="Let the model think before answering (gemma, and "
                                           "openai servers that support it); thoughts are stored apart.")] = False,
    gpus: Annotated[str | None, typer.Option("--gpus", help="One engine per GPU, documents spread over them: "
                                                "N (the first N), all, or indices like 0,2 (cpu:N: N engine "
                                                "processes without a GPU, for tests); or DOCPIPE_GPUS.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the files that are not ok, one line "
                                        "each, and errors.")] = False,
    quantize: Annotated[str | None, typer.Option("--quantize", help="Gemma weights: none (bf16), fp8, int8, "
                                                    "int4, or auto (bf16 where its weights take at most half "
                                                    "the GPU, else fp8, else the most precise mode that fits) "
                                                    "[default: auto].")] = None,
    set_: Annotated[list[str] | None, SET_OPT] = None,
    ray: Annotated[str | None, typer.Option("--ray", help="Run the engine as actors on a Ray cluster: auto, "
                                               "ray://HOST:10001, or local[:CPUS] to start one here "
                                               "(pip install 'docpipe[ray]').", envvar="DOCPIPE_RAY")] = None,
    ray_actors: Annotated[int | None, typer.Option("--ray-actors", help="Engine actors on the cluster "
                                                      "(default: one per CPU (offline), per GPU (gemma), per "
                                                      "server (openai)).")] = None,
) -> None:
    """Read documents and store their fields.

    Re-running skips documents already done (same bytes, schema and engine); failed ones are retried.

    Example:  docpipe ingest ~/invoices --schema invoice --workers 2
    """
    from .api import ingest_options
    from .errors import DocpipeError
    from .pipeline import ingest as run_ingest
    from .progress import RichProgress, print_report
    from .remote import is_remote

    # a bad link is not a typo: discovery records what it is
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink() and not is_remote(p)]
    if missing:
        raise _fail(f"no such file or folder: {', '.join(missing)}", code=2)
    if image_tokens is not None and image_tokens not in (70, 140, 280, 560, 1120):
        raise typer.BadParameter("must be one of 70, 140, 280, 560, 1120", param_hint="--image-tokens")
    from .lifeline import exit_code_for_interrupt, terminate_like_interrupt

    terminate_like_interrupt()  # timeout, docker stop, systemd: flush and stop as on Ctrl-C
    try:
        settings = _settings(set_, schema=schema, db=db, engine=engine, model=model, image_tokens=image_tokens,
                             thinking=thinking or None, max_pages=max_pages, base_url=base_url,
                             api_key_env=api_key_env, concurrency=concurrency, quantize=quantize,
                             workers=None if workers is None else max(1, workers), gpus=gpus)
        opts = ingest_options(paths, settings=settings, force=force, retry_invalid=retry_invalid,
                              password=password, summarize=summarize, ray=ray, ray_actors=ray_actors)
        progress = RichProgress(enabled=not quiet, quiet=quiet)
        with progress:
            report = run_ingest(opts, progress)
    except DocpipeError as e:
        raise _fail(str(e))
    except KeyboardInterrupt:  # before the run began (engines starting): typer would exit 130 even after SIGTERM
        _err("interrupted")
        raise typer.Exit(exit_code_for_interrupt())
    print_report(report, opts.db, progress)
    if report.stopped:
        raise _fail(report.stopped)
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
    problems, duplicates; tables: documents, pages, extractions, extraction_history (every attempt), summaries,
    files (every path seen), runs.

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
    names: Annotated[list[str] | None, typer.Argument(help="Views or tables to export (default: every schema "
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
    name: Annotated[str | None, typer.Argument(help="Show one schema (built-in name, file.py:Model or .json).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON Schema engines are given.")] = False,
) -> None:
    """List the schemas and their fields (descriptions are what a model is told).

    Bring your own:  docpipe ingest contracts/ --schema my_schemas.py:Contract

    Example:  docpipe schemas invoice --json
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
def status(db: Annotated[Path, DB_OPT] = Path("docpipe.duckdb")) -> None:
    """Counts per schema, engine and status, and every document that is not ok with its reason.

    Example:  docpipe status --db ap.duckdb
    """
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


def _settings(pairs: list[str] | None, **flags: Any) -> Any:
    """Settings from ``--set NAME=VALUE`` pairs and a command's flags (None: not given); flags win."""
    from .config import Settings

    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, eq, text = pair.partition("=")
        if not eq or not name.strip():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--set")
        try:
            values[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            values[name.strip()] = text
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return Settings.load(values)
    except KeyError as e:
        raise typer.BadParameter(f"no setting named {e.args[0]!r} (docpipe config lists them)", param_hint="--set")


from . import cli_setup  # noqa: E402, F401  (registers engines, config, eval and review on app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        from .lifeline import exit_code_for_interrupt

        _err("interrupted")
        sys.exit(exit_code_for_interrupt())
    except Exception as e:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("DOCPIPE_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        _err(f"{type(e).__name__}: {first} (a docpipe bug: DOCPIPE_DEBUG=1 shows the traceback; please report it)")
        sys.exit(1)


if __name__ == "__main__":
    main()
