"""`make bench`: build the full portfolio, then run every benchmark against it and print their tables.

    python -m bench [--rows N] [--workdir DIR] [--skip-build]

Without --skip-build the build itself is timed (fresh work directory, data generated from scratch).
Targets are checked against figures and baselines measured in the same run, never in unit tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("bench.bench_dashboard", "bench.bench_api", "bench.bench_analyst")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "results" / "workdir"))
    parser.add_argument("--rows", type=int, help="labelled applications (default: the real 307,511)")
    parser.add_argument("--skip-build", action="store_true", help="reuse the artefacts already in --workdir")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)

    core = [sys.executable, "-m", "bench.bench_core", "--workdir", str(workdir)]
    if not args.skip_build:
        shutil.rmtree(workdir, ignore_errors=True)
        core.append("--build")
        if args.rows:
            core += ["--rows", str(args.rows)]
    started = time.perf_counter()
    failed = subprocess.call(core, cwd=ROOT) != 0
    for suite in SUITES:
        if importlib.util.find_spec(suite) is None:
            print(f"\n(skipping {suite}: not present)")
            continue
        failed |= subprocess.call([sys.executable, "-m", suite, "--workdir", str(workdir)], cwd=ROOT) != 0
    print(f"\nbenchmarks done in {time.perf_counter() - started:.0f} s; artefacts in {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
