"""A folder's images sharing batches, against one item per network call.

    python benchmarks/batching.py --out docs          # 3 runs of each, alternating

Runs `repaint inpaint DIGITS/ --mask MASKS/` on the six example digits (`repaint example`)
with the default options, and the same with `--batch-size 1`, as whole processes side by
side (alternating, so a busy spell hits both), and reports the median wall time of each,
their ratio, and whether the outputs are byte-identical.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/batching.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lib.hardware import cpu_name
from benchmarks.lib.reports import command_line, machine_info, utc_now, write_json, write_text

REPAINT = [sys.executable, "-m", "repaint"]


def run(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([*REPAINT, *args], check=True, capture_output=True)
    return time.perf_counter() - started


def outputs(folder: Path) -> dict[str, bytes]:
    """Every image a run wrote, by its path under the output folder (none is an error)."""
    found = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}
    if not found:
        raise SystemExit(f"{folder}: the run wrote no images")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write batching.json and batching.md here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="batching_"))
    subprocess.run([*REPAINT, "example", "--out", str(work / "ex")], check=True)
    common = ["inpaint", str(work / "ex" / "digits"), "--mask", str(work / "ex" / "masks")]
    common += ["--seed", "0", "--no-progress"]
    times: dict[str, list[float]] = {"shared batches": [], "--batch-size 1": []}
    for repeat in range(args.repeats):
        for name, extra in (("shared batches", []), ("--batch-size 1", ["--batch-size", "1"])):
            out = work / f"{name.replace(' ', '_')}_{repeat}"
            times[name].append(run([*common, *extra, "--out", str(out)]))
    identical = outputs(work / "shared_batches_0") == outputs(work / "--batch-size_1_0")
    medians = {name: statistics.median(values) for name, values in times.items()}
    report: dict[str, Any] = {
        "command": command_line("benchmarks/batching.py", argv),
        "date": utc_now(),
        "cpu": cpu_name(),
        "machine": machine_info(),
        "seconds": times,
        "median_seconds": medians,
        "ratio": medians["shared batches"] / medians["--batch-size 1"],
        "identical_outputs": identical,
    }
    text = (
        f"Six example digits, default options (`fast`, 210 evaluations each), measured "
        f"{report['date']} on {report['cpu']}: shared batches {medians['shared batches']:.1f} s, "
        f"`--batch-size 1` {medians['--batch-size 1']:.1f} s (medians of {args.repeats} "
        f"whole processes each, alternating): {report['ratio']:.2f}x the time; outputs "
        f"{'byte-identical' if identical else 'DIFFERENT'}.\n"
    )
    print(text)
    if args.out:
        write_json(args.out / "batching.json", report)
        write_text(args.out / "batching.md", text)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
