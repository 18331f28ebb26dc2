"""Readers beside a writer: the DuckDB file held only while committing (what docpipe does) against committed
batches written as immutable Parquet shards read through a view (the alternative), on one machine.

    python scripts/bench_sharing.py [--docs 20000] [--batch 500]

Prints, for each: the writer's cost per batch, and a reader's latency for a count over the results while the
writer runs (held file: the reader waits for the commit in progress; shards: it lists and opens every shard).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

READER = """
import sys, time, duckdb
sys.path.insert(0, sys.argv[3])
from docpipe.store import Store
mode, target = sys.argv[1], sys.argv[2]
lat = []
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end:
    t0 = time.perf_counter()
    if mode == "held":
        with Store.open(target, read_only=True) as s:
            s.query("SELECT count(*), sum(length(text)) FROM pages")
    else:
        duckdb.sql(f"SELECT count(*), sum(length(text)) FROM read_parquet('{target}/*.parquet')").fetchall()
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
print(" ".join(f"{x:.1f}" for x in lat))
"""


def rows(start: int, n: int) -> list[dict]:
    return [{"doc_id": f"{i:064x}", "page_no": 1, "text": "x" * 800} for i in range(start, start + n)]


def run(mode: str, docs: int, batch: int, tmp: Path) -> tuple[float, list[float]]:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from docpipe.sharing import MIN_COMMIT_GAP
    from docpipe.store import Store, connect_waiting

    target = tmp / ("held.duckdb" if mode == "held" else "shards")
    if mode == "held":
        Store.open(target).close()
    else:
        target.mkdir()
        pq.write_table(pa.Table.from_pylist(rows(-1, 1)), target / "seed.parquet")
    reader = subprocess.Popen([sys.executable, "-c", READER, mode, str(target), str(Path(__file__).parents[1]),
                               "8"], stdout=subprocess.PIPE, text=True)
    costs = []
    end = time.monotonic() + 8
    i = 0
    while time.monotonic() < end and i < docs:
        tbl = pa.Table.from_pylist(rows(i, batch))
        t0 = time.perf_counter()
        if mode == "held":
            con = connect_waiting(str(target), False, 60)
            con.register("r", tbl)
            con.execute("DELETE FROM pages p WHERE EXISTS (SELECT 1 FROM r WHERE r.doc_id = p.doc_id)")
            con.execute("INSERT INTO pages (doc_id, page_no, text) SELECT * FROM r")
            con.close()
        else:
            part = target / f"batch{i:09d}.parquet"
            pq.write_table(tbl, part.with_suffix(".tmp"))  # readers must never see a half-written shard
            os.replace(part.with_suffix(".tmp"), part)
        costs.append((time.perf_counter() - t0) * 1000)
        i += batch
        time.sleep(MIN_COMMIT_GAP)  # as the ingest: at most one commit a second
    lat = [float(x) for x in reader.communicate()[0].split()]
    del duckdb
    return statistics.median(costs), lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; batches of {args.batch} one-page results, a commit a second for 8 s per mode")
    print(f"{'mode':<8} {'commit ms':>10} {'read p50 ms':>12} {'read p95 ms':>12} {'read max ms':>12} {'reads':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("held", "shards"):
            cost, lat = run(mode, args.docs, args.batch, Path(tmp))
            lat.sort()
            print(f"{mode:<8} {cost:>10.1f} {statistics.median(lat):>12.1f} {lat[int(len(lat) * 0.95)]:>12.1f} "
                  f"{lat[-1]:>12.1f} {len(lat):>6}")


if __name__ == "__main__":
    main()
