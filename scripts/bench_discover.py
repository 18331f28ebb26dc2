"""Discovery's rate (files/s, MB/s) in the driver alone against Ray tasks on a local cluster of N CPUs.

    python scripts/bench_discover.py                          # 2,000 small files + 4 large ones; Ray 1,2 CPUs
    python scripts/bench_discover.py --small 20000 --cpus 1,2,4
    python scripts/bench_discover.py --s3 --small 500 --large 0  # the files as objects in moto's S3 server

Files are made once in a temporary folder and read once before timing, so every run reads them from the page
cache: this measures hashing and per-file cost, not the disk. Ray runs leave out starting the cluster (timed
apart); each yields the same items as the driver's run, checked.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_files(folder: Path, small: int, small_kb: int, large: int, large_mb: int) -> int:
    """``small`` PDF-looking files of ``small_kb`` KiB in folders of 100, ``large`` of ``large_mb`` MiB; bytes."""
    total = 0
    for i in range(small):
        sub = folder / f"batch{i // 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        data = b"%PDF-1.7\n" + os.urandom(small_kb * 1024 - 9)
        (sub / f"doc{i:05d}.pdf").write_bytes(data)
        total += len(data)
    for i in range(large):
        with open(folder / f"large{i}.pdf", "wb") as f:
            f.write(b"%PDF-1.7\n")
            for _ in range(large_mb):
                f.write(os.urandom(1 << 20))
        total += 9 + (large_mb << 20)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--small-kb", type=int, default=50)
    ap.add_argument("--large", type=int, default=4)
    ap.add_argument("--large-mb", type=int, default=64)
    ap.add_argument("--cpus", default="1,2", help="Ray cluster sizes to try")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each; the best is shown")
    ap.add_argument("--s3", action="store_true", help="upload them to a local moto S3 server and discover there")
    args = ap.parse_args()

    import ray

    from docpipe.discover import discover
    from docpipe.ray_discover import discover_on_ray

    tmp = Path(tempfile.mkdtemp(prefix="bench_discover_"))
    try:
        nbytes = make_files(tmp, args.small, args.small_kb, args.large, args.large_mb)
        files = args.small + args.large
        target: Path | str = tmp
        server = None
        if args.s3:
            server, target = _s3(tmp)
        expected = list(discover([target]))  # warms the page cache
        assert len(expected) == files
        print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"python {platform.python_version()}, ray {ray.__version__}; {args.small} files of {args.small_kb} KiB "
              f"+ {args.large} of {args.large_mb} MiB ({nbytes / 1e6:,.0f} MB), "
              f"{'in moto S3 on 127.0.0.1' if args.s3 else 'page cache warm'}", flush=True)
        print(f"{'where':<16} {'seconds':>8} {'files/s':>8} {'MB/s':>8}")

        def show(label: str, run) -> None:
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                got = run()
                best = min(best, time.perf_counter() - t0)
                assert got == expected
            print(f"{label:<16} {best:>8.2f} {files / best:>8,.0f} {nbytes / 1e6 / best:>8,.0f}", flush=True)

        show("driver", lambda: list(discover([target])))
        for n in (int(x) for x in args.cpus.split(",")):
            t0 = time.perf_counter()
            ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False, object_store_memory=256 << 20)
            start = time.perf_counter() - t0
            list(discover_on_ray([target]))  # the cluster's workers start and import docpipe
            show(f"ray {n} CPU(s)", lambda: list(discover_on_ray([target])))
            print(f"  (cluster start {start:.1f} s, not counted)", flush=True)
            ray.shutdown()
    finally:
        if server is not None:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def _s3(folder: Path) -> tuple[object, str]:
    """A moto S3 server on a free port with ``folder`` uploaded to s3://bench/docs; (process, URL)."""
    import socket
    import subprocess

    import fsspec

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    fs = fsspec.filesystem("s3")
    fs.mkdir("bench")
    fs.put(str(folder) + "/", "bench/docs/", recursive=True)
    return proc, "s3://bench/docs"


if __name__ == "__main__":
    main()
