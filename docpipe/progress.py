"""Rich progress for ingest (files, pages, rate, ETA) and the closing summary. The pipeline never prints."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any

from rich.markup import escape

from .models import DocResult, Status
from .paths import path_text, shown
from .pipeline import IngestReport


class RichProgress:
    """A rich progress bar on stderr driven by the pipeline's Progress callbacks."""

    def __init__(self, enabled: bool = True, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.enabled = enabled and not quiet
        self.quiet = quiet  # only the files that are not ok, once each
        self.printed: set[str] = set()
        self._progress: Any = None
        self._task: Any = None
        self.pages = 0
        self.documents = 0  # done so far: with --ray, documents may be done before discovery has finished

    def __enter__(self) -> RichProgress:
        import logging

        # engines say run-wide things (a lowered image budget) through the "docpipe" logger: above the bar
        self._log = _ConsoleHandler(self)
        logging.getLogger("docpipe").addHandler(self._log)
        return self

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.getLogger("docpipe").removeHandler(self._log)
        if self._progress is not None:
            self._progress.stop()

    def engine_chosen(self, kind: str, why: str, model: str | None) -> None:
        if self.quiet:
            return
        self.console.print(f"engine: [bold]{kind}[/]" + (f" ({escape(model)})" if model else "") + f" - {escape(why)}",
                           soft_wrap=True)

    def planned(self, total_files: int, todo: int, skipped: int, copies: int = 0) -> None:
        msg = f"{total_files} file(s): {todo} to process"
        if skipped:
            msg += f", {skipped} already done (--force redoes them)"
        if copies:
            msg += f", {copies} identical cop{'y' if copies == 1 else 'ies'} of another file (see the duplicates view)"
        if not self.quiet:
            self.console.print(msg, soft_wrap=True)
        if not self.enabled or todo == 0:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[pages]} pages, {task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task("documents", total=todo, completed=self.documents, pages=self.pages,
                                             rate="- pages/s")

    def waiting(self, held: int) -> None:
        """Every remaining document is claimed by another ingest on this database: say so once."""
        self.console.print(f"waiting: {held} document(s) are being processed by another ingest on this database; "
                           "they are taken over if it stops (Ctrl-C leaves them to it)")

    def document_done(self, result: DocResult) -> None:
        self.pages += len(result.output.pages)
        self.documents += 1
        if result.status not in (Status.OK,):
            self.printed.add(path_text(result.source.path))
            line = not_ok_line(path_text(result.source.path), result.status.value, result.reason)
            (self._progress.console if self._progress is not None else self.console).print(line, soft_wrap=True)
        if self._progress is not None:
            task = self._progress.tasks[0]
            elapsed = task.elapsed or 0.0
            rate = f"{self.pages / elapsed:.1f} pages/s" if elapsed > 0 else "- pages/s"
            self._progress.update(self._task, advance=1, pages=self.pages, rate=rate)


class _ConsoleHandler(logging.Handler):
    """Warnings from the library, one line each, printed where the progress bar does not break them."""

    def __init__(self, progress: RichProgress) -> None:
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        p = self.progress
        console = p._progress.console if p._progress is not None else p.console
        console.print(f"[yellow]warning:[/] {escape(record.getMessage())}", soft_wrap=True)


def not_ok_line(path: str, status: str, reason: str) -> str:
    """``path: reason``, the status named first only where the reason does not already say it."""
    said = status.replace("_", " ") in reason.lower() or status in reason.lower()
    return f"{escape(shown(path))}: " + ("" if said else f"[yellow]{status}[/]: ") + escape(shown(reason or status))


def print_report(report: IngestReport, db: Path, progress: RichProgress | None = None) -> None:
    """The closing summary: a count per outcome (each failing status its own column), pages and pages per second,
    then the suggested query. Files already reported while running are not listed again."""
    from rich.console import Console
    from rich.table import Table

    c = Console(stderr=True, highlight=False)
    printed = progress.printed if progress is not None else set()
    for f in report.failures:  # those that never reached the engine (unreadable paths)
        if f.path not in printed:
            c.print(not_ok_line(f.path, f.status, f.reason), soft_wrap=True)
    if report.done_elsewhere:
        c.print(f"{report.done_elsewhere} document(s) were done meanwhile by another ingest on the same database")
    if report.interrupted:
        c.print("[yellow]interrupted[/]: finished documents are stored; run the same command to continue")
    if report.sparse:  # said even with --quiet: the values are thin, not wrong
        c.print(f"[yellow]few fields filled[/] in {len(report.sparse)} ok document(s): "
                f"{escape(shown(report.sparse[0].reason))}", soft_wrap=True)
        for f in report.sparse[:5]:
            c.print(f"  {escape(shown(f.path))}", soft_wrap=True)
    if progress is not None and progress.quiet:
        return
    order = [Status.OK.value, Status.INVALID.value, Status.FAILED.value]
    order += [k for k in sorted(report.counts) if k not in order and k != Status.SKIPPED.value and report.counts[k]]
    order.append(Status.SKIPPED.value)
    t = Table(title=f"docpipe ingest ({report.engine}, schema {report.schema})", title_justify="left")
    for col in order + ["pages", "seconds", "pages/s"]:
        t.add_column(col, justify="right")
    rate = report.pages / report.seconds if report.seconds > 0 else 0.0
    t.add_row(*[str(report.counts.get(k, 0)) for k in order], str(report.pages), f"{report.seconds:.1f}",
              f"{rate:.1f}")
    c.print(t)
    if report.failures:
        c.print(f"{len(report.failures)} not ok (listed above); `docpipe status` lists them again", soft_wrap=True)
    if not report.counts.get(Status.OK.value) and not report.counts.get(Status.SKIPPED.value):
        return  # nothing to query yet
    from .display import suggested_query

    db_opt = "" if str(db) == "docpipe.duckdb" else f"--db {shlex.quote(str(db))} "
    c.print(f"results in {escape(shown(str(db)))}; try: docpipe query {escape(db_opt)}"
            f"{escape(_shell_quote(suggested_query(report.schema, report.columns)))}", soft_wrap=True)


def _shell_quote(sql: str) -> str:
    """SQL as a shell argument: in double quotes, or single quotes when it quotes a name itself."""
    return f"'{sql}'" if '"' in sql and "'" not in sql else '"' + sql.replace('"', '\\"') + '"'
