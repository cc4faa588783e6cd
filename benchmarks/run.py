"""Benchmark harness: cascata against raw pyzmq baselines.

    python benchmarks/run.py [--runs 5] [--only W1,W3] [--quick] [--warmup 0]

Every implementation of a workload runs ``--runs`` times, interleaved (raw, cascata, raw,
cascata, ...) so that machine noise hits both alike; the table shows the median with
[min..max] and the ratio of the medians, cascata/raw.  A run that fails or computes a wrong
result raises inside the workload function; the harness then reports that implementation
as FAILED for the workload (never a figure) and exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import zmq

try:  # run as a script: this directory is on sys.path
    import raw_credit
    import raw_zmq
except ImportError:  # python -m benchmarks.run from the repository root
    from benchmarks import raw_credit, raw_zmq

Runner = Callable[..., dict[str, float]]


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    n: int | None  # items in a full run; None: the function takes no size (W4)


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("W1", "pipeline: 0..N-1 -> +1 -> +1 -> +1 -> sum", raw_zmq.W1_N),
        Workload("W2", "fan-out: 0..N-1 -> 4 x (x + sum(range(2000))) -> sum", raw_zmq.W2_N),
        Workload("W3", "payload: N x 8 MB float64 arrays -> pass -> sum of [-1]", raw_zmq.W3_N),
        Workload("W4", "start-up: fresh interpreter, 1 item, source -> pass -> sink", None),
        *(
            Workload(f"W5/{c}", f"W1 with capacity={c} on every stage (raw: credit window {c})",
                     raw_credit.W5_N)
            for c in raw_credit.W5_WINDOWS
        ),
        Workload("W6/every4", "200 items -> Uneven * 4, every 4th 0.1 s, else 0.01 s", None),
        Workload("W6/random", "300 items -> Uneven * 4 (capacity=1), 10% random 0.1 s", None),
    )
}

#: implementation name -> workload key -> function.  W1-W3 take the item count n; W4 takes
#: nothing.  Each returns a dict with (what applies of) the keys in METRICS.
IMPLEMENTATIONS: dict[str, dict[str, Runner]] = {
    "raw": {"W1": raw_zmq.w1, "W2": raw_zmq.w2, "W3": raw_zmq.w3, "W4": raw_zmq.w4},
}


def _variants(module: ModuleType) -> dict[str, Runner]:
    """W5/C and W6/case bound to their parameter, for a module with w5(n, c) and w6(case)."""
    out: dict[str, Runner] = {}
    if callable(getattr(module, "w5", None)):
        for c in raw_credit.W5_WINDOWS:
            out[f"W5/{c}"] = lambda n, c=c: module.w5(n, c)
    if callable(getattr(module, "w6", None)):
        for case in raw_credit.W6_N:
            out[f"W6/{case}"] = lambda case=case: module.w6(case)
    return out


IMPLEMENTATIONS["raw"].update(_variants(raw_credit))
#: implementation name -> its module (for an optional prepare() hook and the header)
MODULES: dict[str, ModuleType] = {"raw": raw_zmq}

# --------------------------------------------------------------------------------------------
# CASCATA HOOK.  benchmarks/cascata_impl.py exposes w1(n), w2(n), w3(n)
# and w4() with the same workloads and result dicts as raw_zmq.py, and optionally prepare()
# (called once, untimed, before the runs).  When the file exists it is imported (an import
# error is reported, not swallowed) and registered for whichever of w1..w4 it defines.
# --------------------------------------------------------------------------------------------


def register_cascata() -> None:
    package = raw_zmq.__name__.rpartition(".")[0]
    name = f"{package}.cascata_impl" if package else "cascata_impl"
    if importlib.util.find_spec(name) is None:
        return
    module = importlib.import_module(name)
    funcs = {key: getattr(module, key.lower(), None) for key in WORKLOADS if "/" not in key}
    IMPLEMENTATIONS["cascata"] = {key: fn for key, fn in funcs.items() if callable(fn)}
    IMPLEMENTATIONS["cascata"].update(_variants(module))
    MODULES["cascata"] = module


# (metric key, label, format).  The ratio column is always median(cascata) / median(raw):
# above 1 is better for items/s, below 1 is better for wall time, RSS and CPU time.  A metric
# shows for a workload when any implementation reports it ("-" where one does not).
METRICS: list[tuple[str, str, str]] = [
    ("items_per_s", "items/s", "{:,.0f}"),
    ("wall_s", "wall s", "{:.3f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ("cpu_s", "CPU s", "{:.2f}"),
    ("vs_ideal", "x ideal", "{:.2f}"),
]


def size(workload: Workload, quick: bool) -> int | None:
    if workload.n is None or not quick:
        return workload.n
    return max(1, workload.n // 10)


@dataclass
class Outcome:
    results: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None


def run_all(
    keys: list[str], impls: list[str], runs: int, warmup: int, quick: bool
) -> dict[str, dict[str, Outcome]]:
    outcomes: dict[str, dict[str, Outcome]] = {}
    for key in keys:
        n = size(WORKLOADS[key], quick)
        present = [impl for impl in impls if key in IMPLEMENTATIONS[impl]]
        outcomes[key] = {impl: Outcome() for impl in present}
        for i in range(warmup + runs):
            for impl in present:  # interleaved: raw, cascata, raw, cascata, ...
                outcome = outcomes[key][impl]
                if outcome.error is None:
                    _run_one(key, impl, n, i - warmup, runs, outcome)
    return outcomes


def _run_one(key: str, impl: str, n: int | None, i: int, runs: int, outcome: Outcome) -> None:
    fn = IMPLEMENTATIONS[impl][key]
    label = f"{key} {impl:<8} " + (f"run {i + 1}/{runs}" if i >= 0 else "warm-up")
    started = time.perf_counter()
    try:
        result = fn() if n is None else fn(n)
    except Exception as exc:  # a failed or wrong run: never a figure
        outcome.error = f"{type(exc).__name__}: {exc}"
        print(f"  {label}: FAILED: {outcome.error}", file=sys.stderr, flush=True)
        return
    took = time.perf_counter() - started
    shown = ", ".join(f"{k}={fmt.format(result[k])}" for k, _, fmt in METRICS if k in result)
    print(f"  {label}: {shown} ({took:.2f} s)", file=sys.stderr, flush=True)
    if i >= 0:
        outcome.results.append(result)


def _cell(values: list[float], fmt: str) -> str:
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{fmt.format(mid)} [{fmt.format(lo)}..{fmt.format(hi)}]"


def table(outcomes: dict[str, dict[str, Outcome]], impls: list[str]) -> list[str]:
    others = [impl for impl in impls if impl != "raw"] if "raw" in impls else []
    header = ["workload", "metric", *(f"{impl} median [min..max]" for impl in impls)]
    header += [f"{other}/raw" for other in others]
    rows = [header]
    for key, by_impl in outcomes.items():
        reported = {m for o in by_impl.values() for r in o.results for m in r}
        metrics = [m for m in METRICS if m[0] in reported] or [("", "-", "")]
        for metric, label, fmt in metrics:
            row = [key, label]
            medians: dict[str, float] = {}
            for impl in impls:
                outcome = by_impl.get(impl)
                values = [r[metric] for r in outcome.results if metric in r] if outcome else []
                if outcome is not None and outcome.error is not None:
                    row.append("FAILED")
                elif values:
                    row.append(_cell(values, fmt))
                    medians[impl] = statistics.median(values)
                else:
                    row.append("-")
            for other in others:
                ok = other in medians and medians.get("raw")
                row.append(f"{medians[other] / medians['raw']:.2f}" if ok else "-")
            rows.append(row)
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]


def _median(outcomes: dict[str, dict[str, Outcome]], key: str, impl: str, metric: str) -> float | None:
    outcome = outcomes.get(key, {}).get(impl)
    values = [r[metric] for r in outcome.results if metric in r] if outcome else []
    return statistics.median(values) if values else None


def goals(outcomes: dict[str, dict[str, Outcome]]) -> list[str]:
    """The W5 and W6 goals (README, Performance) as ratios of this run's medians."""
    lines = []
    for c in raw_credit.W5_WINDOWS:
        ours = _median(outcomes, f"W5/{c}", "cascata", "items_per_s")
        raw = _median(outcomes, f"W5/{c}", "raw", "items_per_s")
        w1 = _median(outcomes, "W1", "cascata", "items_per_s")
        if ours and raw:
            goal = "(goal >= 0.7)" if c < max(raw_credit.W5_WINDOWS) else ""
            lines.append(f"W5/{c}: cascata / raw at the same window {ours / raw:.2f} {goal}")
        if ours and w1 and c == max(raw_credit.W5_WINDOWS):
            lines.append(f"W5/{c}: cascata / cascata W1 (no capacity given) {ours / w1:.2f} (goal >= 0.9)")
    for case in raw_credit.W6_N:
        for impl in ("raw", "cascata"):
            ratio = _median(outcomes, f"W6/{case}", impl, "vs_ideal")
            if ratio:
                lines.append(f"W6/{case}: {impl} stream time / ideal {ratio:.2f} (goal <= 1.3)")
    return ["", "goals:", *lines] if lines else []


def machine() -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({usable} usable), "
        f"{platform.platform()}, load average {load}",
        f"python {platform.python_version()} ({sys.executable})",
        f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}",
    ]
    try:
        import numpy

        lines[-1] += f", numpy {numpy.__version__}"
    except ImportError:
        pass
    for impl, module in MODULES.items():
        lines.append(f"{impl}: {module.__file__}")
    if "cascata" in MODULES:
        try:
            lines[-1] += f" (cascata {importlib.metadata.version('cascata')})"
        except importlib.metadata.PackageNotFoundError:
            pass
    return lines


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="cascata vs raw pyzmq benchmarks")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per implementation")
    parser.add_argument("--warmup", type=int, default=0, help="untimed runs before those")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W3")
    parser.add_argument("--quick", action="store_true", help="N / 10 (smoke test)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    asked = [k.strip().upper() for k in (args.only or ",".join(WORKLOADS)).split(",")]
    # a family name (W5) selects all its variants (W5/10, W5/100, ...)
    def selects(k: str, w: str) -> bool:
        return w.upper() == k or w.upper().startswith(k + "/")

    keys = [w for k in asked for w in WORKLOADS if selects(k, w)]
    unknown = [k for k in asked if not any(selects(k, w) for w in WORKLOADS)]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    args.keys = keys
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    register_cascata()  # <- the cascata hook
    impls = list(IMPLEMENTATIONS)
    print("\n".join(machine()))
    for module in MODULES.values():  # untimed set-up, e.g. starting a fork server
        prepare: Any = getattr(module, "prepare", None)
        if callable(prepare):
            prepare()
    print(f"runs: {args.runs} (+{args.warmup} warm-up), {'quick (N/10)' if args.quick else 'full'}")
    for key in args.keys:
        n = size(WORKLOADS[key], args.quick)
        print(f"  {key}: {WORKLOADS[key].title}" + (f", N = {n:,}" if n is not None else ""))
    sys.stdout.flush()
    outcomes = run_all(args.keys, impls, args.runs, args.warmup, args.quick)
    print()
    print("\n".join(table(outcomes, impls)))
    print("\n".join(goals(outcomes)))
    failed = [
        f"{key} {impl}: {o.error}"
        for key, by_impl in outcomes.items()
        for impl, o in by_impl.items()
        if o.error
    ]
    if failed:
        print("\nfailures:\n" + "\n".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
