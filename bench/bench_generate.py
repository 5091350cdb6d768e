"""Measure ``popsync generate``: wall time and peak resident memory for N people.

    .venv/bin/python bench/bench_generate.py --people 1000000 [--seed 7] [--profile default]

Runs the same path as the CLI (chunked generation streamed to Parquet) in this process and
reports the process's peak RSS (``ru_maxrss``), which includes Python, numpy and Arrow buffers.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from popsync.synthetic.nation import generate_chunks, write_chunks  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-generate-") as scratch:
        out = Path(scratch) / "nation"
        started = time.perf_counter()
        write_chunks(generate_chunks(args.people, args.seed, args.profile), out)
        wall = time.perf_counter() - started
        sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
        import pyarrow.parquet as pq

        registry_rows = pq.ParquetFile(out / "registry.parquet").metadata.num_rows
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss  # KiB on Linux
    print(f"date        {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine     {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"command     bench/bench_generate.py --people {args.people} --seed {args.seed} "
          f"--profile {args.profile}")
    print(f"people      {args.people}")
    print(f"registry    {registry_rows} rows")
    print(f"wall        {wall:.1f} s ({args.people / wall / 1e3:.0f}k people/s)")
    # CPU time shows the work itself when other jobs share the two cores (wall grows, CPU not).
    print(f"CPU         {usage.ru_utime + usage.ru_stime:.1f} s (user + system, incl. imports)")
    print(f"load avg    {os.getloadavg()[0]:.1f}")
    print(f"peak RSS    {peak_kib / 1024**2:.2f} GiB")
    print("files       " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
