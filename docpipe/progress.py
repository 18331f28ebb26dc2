"""Rich progress for ingest (files, pages, rate, ETA) and the closing summary. The pipeline never prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from .models import DocResult, Status
from .pipeline import IngestReport


class RichProgress:
    """A rich progress bar on stderr driven by the pipeline's Progress callbacks."""

    def __init__(self, enabled: bool = True) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        self.pages = 0

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def engine_chosen(self, kind: str, why: str, model: str | None) -> None:
        self.console.print(f"engine: [bold]{kind}[/]" + (f" ({escape(model)})" if model else "") + f" - {escape(why)}")

    def planned(self, total_files: int, todo: int, skipped: int) -> None:
        msg = f"{total_files} file(s): {todo} to process"
        if skipped:
            msg += f", {skipped} already done (--force redoes them)"
        self.console.print(msg)
        if not self.enabled or todo == 0:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[pages]} pages, {task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task("documents", total=todo, pages=0, rate="- pages/s")

    def waiting(self, held: int) -> None:
        """Every remaining document is claimed by another ingest on this database: say so once."""
        self.console.print(f"waiting: {held} document(s) are being processed by another ingest on this database; "
                           "they are taken over if it stops (Ctrl-C leaves them to it)")

    def document_done(self, result: DocResult) -> None:
        self.pages += len(result.output.pages)
        if result.status not in (Status.OK,):
            line = f"[yellow]{result.status.value}[/] {escape(str(result.source.path))}: {escape(result.reason)}"
            if self._progress is not None:
                self._progress.console.print(line)
            else:
                self.console.print(line)
        if self._progress is not None:
            task = self._progress.tasks[0]
            elapsed = task.elapsed or 0.0
            rate = f"{self.pages / elapsed:.1f} pages/s" if elapsed > 0 else "- pages/s"
            self._progress.update(self._task, advance=1, pages=self.pages, rate=rate)


def print_report(report: IngestReport, db: Path) -> None:
    """The closing summary table: ok / invalid / failed / skipped, pages and pages per second."""
    from rich.console import Console
    from rich.table import Table

    c = Console(stderr=True, highlight=False)
    failed = sum(v for k, v in report.counts.items() if k not in (Status.OK.value, Status.INVALID.value,
                                                                 Status.SKIPPED.value))
    t = Table(title=f"docpipe ingest ({report.engine}, schema {report.schema})", title_justify="left")
    for col in ("ok", "invalid", "failed", "skipped", "pages", "seconds", "pages/s"):
        t.add_column(col, justify="right")
    rate = report.pages / report.seconds if report.seconds > 0 else 0.0
    t.add_row(str(report.counts.get("ok", 0)), str(report.counts.get("invalid", 0)), str(failed),
              str(report.counts.get("skipped", 0)), str(report.pages), f"{report.seconds:.1f}", f"{rate:.1f}")
    c.print(t)
    if report.done_elsewhere:
        c.print(f"{report.done_elsewhere} document(s) were done meanwhile by another ingest on the same database")
    if report.interrupted:
        c.print("[yellow]interrupted[/]: finished documents are stored; run the same command to continue")
    if report.failures:
        c.print("[bold]not ok:[/]")
        for f in report.failures:
            c.print(f"  {escape(f.path)}: [yellow]{f.status}[/] {escape(f.reason)}", soft_wrap=True)
    c.print(f"results in {db}; try: docpipe query \"SELECT * FROM {report.schema}\"", soft_wrap=True)
