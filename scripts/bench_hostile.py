"""Hostile inputs: peak memory per process and in all, time per file, and the status each input got.

Runs the real ``docpipe ingest`` (offline engine) as a subprocess on:
  1. each input alone (the robustness devset folder's files, and the generated hostile corpus of
     tests/corpus/make_hostile.py): wall time of the whole command (start-up included) and peak RSS of every
     process in its tree (the CLI, its OCR workers, the resource tracker);
  2. everything in one batch with --workers 2: peak RSS per process and of the whole tree;
  3. files changed after discovery (swapped, deleted, truncated), through the pipeline API.
RSS is sampled from /proc every 20 ms; a process's peak is its own high-water mark (VmHWM), the tree's the
largest sum of VmRSS seen at one sample. Linux only.

    python scripts/bench_hostile.py [--robustness /work/shared/devset/robustness] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "corpus")]

from make_hostile import good_pdf, make_hostile_corpus  # noqa: E402


def _status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])  # KiB
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [pid], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def run_measured(args: list[str], timeout: float = 300) -> tuple[int, float, float, dict[int, int], int]:
    """(exit code, wall seconds, CPU seconds of the tree, {pid: peak RSS KiB}, peak RSS KiB of the whole tree)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "docpipe", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    peaks: dict[int, int] = {}
    total = 0
    while True:
        done, status, usage = os.wait4(proc.pid, os.WNOHANG)  # reaps it ourselves: its rusage has ru_maxrss
        if done:
            break
        if time.perf_counter() - t0 > timeout:
            proc.kill()
        s = 0
        for pid in _tree(proc.pid):
            st = _status(pid)
            if st:
                peaks[pid] = max(peaks.get(pid, 0), st.get("VmHWM", 0))
                s += st.get("VmRSS", 0)
        total = max(total, s)
        time.sleep(0.02)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if proc.pid not in peaks:  # gone before the first sample; ru_maxrss may include the parent at fork time
        peaks[proc.pid] = usage.ru_maxrss
    return code, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, peaks, total


def stored_statuses(db: Path) -> dict[str, tuple[str, str]]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT d.path, e.status, coalesce(e.reason, '') FROM documents d "
                       "JOIN extractions e USING (doc_id) UNION ALL "
                       "SELECT path, status, reason FROM skipped_paths").fetchall()
    con.close()
    return {p: (s, r) for p, s, r in rows}


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal"))) / 2**20
    return f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def changed_during_run(work: Path) -> list[tuple[str, str, str]]:
    """Swap, delete, empty and cut files after discovery hashed them (a Progress hook), then read the statuses."""
    from docpipe.engines import EngineOptions
    from docpipe.pipeline import IngestOptions, ingest

    folder = work / "changing"
    folder.mkdir()
    names = ("swapped.pdf", "deleted.pdf", "emptied.pdf", "cut.pdf")
    for i, n in enumerate(names):
        good_pdf(folder / n, f"Rechnung\nRechnungsnummer: RE-{i}\nGesamtbetrag: 1{i},00 EUR\n")
    good_pdf(work / "other.pdf", "Rechnung\nRechnungsnummer: RE-OTHER\n")

    class Meddler:
        def engine_chosen(self, *a: object) -> None: ...
        def document_done(self, *a: object) -> None: ...

        def planned(self, *a: object, **kw: object) -> None:
            (folder / "swapped.pdf").write_bytes((work / "other.pdf").read_bytes())
            (folder / "deleted.pdf").unlink()
            (folder / "emptied.pdf").write_bytes(b"")
            (folder / "cut.pdf").write_bytes((folder / "cut.pdf").read_bytes()[:300])

    db = work / "changing.duckdb"
    ingest(IngestOptions(paths=[folder], db=db, engine="offline", engine_options=EngineOptions(workers=1)), Meddler())
    got = stored_statuses(db)
    return [(f"{n} ({how})", *got[str(folder / n)]) for n, how in
            zip(names, ("rewritten after discovery", "deleted after discovery", "emptied after discovery",
                        "truncated after discovery"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--robustness", type=Path, default=Path("/work/shared/devset/robustness"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--alone", choices=("all", "generated"), default="all",
                    help="which inputs also run alone (the batch always has both folders)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_hostile_"))
    hostile = work / "hostile"
    hostile.mkdir()
    make_hostile_corpus(hostile)
    inputs = sorted(p for p in a.robustness.iterdir() if p.suffix != ".jsonl") \
        if a.robustness.is_dir() and a.alone == "all" else []
    # each file alone; the folder holding a link back up (sub/back_up) is measured in the batch below
    inputs += sorted(Path(os.fsdecode(e.path)) for e in os.scandir(os.fsencode(hostile))
                     if not e.is_dir(follow_symlinks=False))

    print(f"machine: {machine()}")
    print(f"command: python scripts/bench_hostile.py --robustness {a.robustness} --workers {a.workers} "
          f"--alone {a.alone}")
    print("\n| input | status | reason | wall s | CPU s | peak RSS MB (largest process) |")
    print("|---|---|---|---:|---:|---:|")
    worst_s, worst_mb = 0.0, 0.0
    for i, path in enumerate(inputs):
        db = work / f"one_{i}.duckdb"
        code, secs, cpu, peaks, _ = run_measured(["ingest", str(path), "--db", str(db), "-e", "offline", "-w", "1",
                                             "-q"])
        got = stored_statuses(db) if db.exists() else {}
        rows = sorted(got.items()) or [(str(path), ("(no record)", f"exit {code}"))]
        mb = max(peaks.values(), default=0) / 1024
        worst_s, worst_mb = max(worst_s, secs), max(worst_mb, mb)
        for p, (status, reason) in rows:
            name = os.fsencode(p).decode("utf-8", "backslashreplace").rsplit("/", 1)[-1]
            name = name if str(hostile) not in p else f"generated: {name}"
            name = name.replace("\x1b", "\\x1b").replace("|", "\\|")
            print(f"| {name} | {status} | {reason[:90].replace('|', '/')} | {secs:.1f} | {cpu:.1f} | {mb:.0f} |",
                  flush=True)
    for label, status, reason in changed_during_run(work):
        print(f"| generated: {label} | {status} | {reason[:90]} | - | - | - |")

    db = work / "batch.duckdb"
    code, secs, cpu, peaks, total = run_measured(["ingest", str(a.robustness), str(hostile), "--db", str(db),
                                             "-e", "offline", "-w", str(a.workers), "-q"], timeout=900)
    batch = stored_statuses(db) if db.exists() else {}
    for p, (status, reason) in sorted(batch.items()):
        if "/sub/" in p:
            print(f"| generated: sub/{p.rsplit('/', 1)[-1]} (in the batch) | {status} | {reason[:90]} | - | - | - |")
    print(f"\nper file (each alone, start-up included): slowest {worst_s:.1f} s, largest process {worst_mb:.0f} MB")
    print(f"one batch, --workers {a.workers}: exit {code}, {secs:.1f} s ({cpu:.1f} CPU s), {len(peaks)} processes, "
          f"peak RSS per process {', '.join(f'{v / 1024:.0f}' for v in sorted(peaks.values(), reverse=True))} MB, "
          f"whole tree {total / 1024:.0f} MB")


if __name__ == "__main__":
    main()
