"""Detector speed: linkwatch against the R package surveillance on the same series.

Usage: python bench/bench_detectors.py [N_SERIES]   (default 12)

Simulates N_SERIES seven-year weekly series (negative-binomial baselines with
trend, seasonality and outbreaks, Noufaily et al. 2013 style), runs every
detector over them in Python and, when Rscript with the surveillance package is
installed, in R in the same run, and prints the times per method and the ratio.
R's time is measured inside R (package start-up excluded). Each side runs the
whole set ROUNDS times (3) and the best round per method counts, so that neither
is judged on a first pass or a moment of load. Never fails on time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from linkwatch.surveillance.detection import DetectionTable
from linkwatch.surveillance.ears import ears_c
from linkwatch.surveillance.farrington import FarringtonControl, farrington_flexible
from linkwatch.surveillance.glrnb import GlrNbControl, glrnb
from linkwatch.surveillance.simulation import BaselineScenario, simulate_series

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "surveillance" / "reference.R"
N_WEEKS = 364
ROUNDS = 3
FARRINGTON_RANGE = (313, 364)
GLRNB_RANGE = (157, 364)

Detector = Callable[[list[int]], DetectionTable]
METHODS: dict[str, tuple[str, tuple[int, int], dict[str, Any], Detector]] = {
    "farrington": (
        "farrington",
        FARRINGTON_RANGE,
        {},
        lambda obs: farrington_flexible(obs, FarringtonControl(), FARRINGTON_RANGE),
    ),
    "noufaily": (
        "farrington",
        FARRINGTON_RANGE,
        {
            "noPeriods": 10,
            "pastWeeksNotIncluded": 26,
            "pThresholdTrend": 1,
            "thresholdMethod": "nbPlugin",
        },
        lambda obs: farrington_flexible(obs, FarringtonControl.noufaily_2013(), FARRINGTON_RANGE),
    ),
    "ears-c1": ("ears", (8, N_WEEKS), {"method": "C1"}, lambda obs: ears_c(obs, "C1")),
    "ears-c2": ("ears", (10, N_WEEKS), {"method": "C2"}, lambda obs: ears_c(obs, "C2")),
    "ears-c3": ("ears", (12, N_WEEKS), {"method": "C3"}, lambda obs: ears_c(obs, "C3")),
    "glrnb": ("glrnb", GLRNB_RANGE, {}, lambda obs: glrnb(obs, GlrNbControl(), GLRNB_RANGE)),
}


def make_series(n_series: int) -> dict[str, list[int]]:
    """Seeded series of varied level, trend, seasonality and dispersion."""
    rng = np.random.default_rng(20240101)
    series: dict[str, list[int]] = {}
    for i in range(n_series):
        scenario = BaselineScenario(
            theta=float(rng.uniform(-0.5, 3.5)),
            beta=float(rng.choice([0.0, 0.001, 0.003])),
            gamma1=float(rng.uniform(-1, 1)),
            gamma2=float(rng.uniform(-1, 1)),
            harmonics=int(rng.integers(0, 3)),
            phi=float(rng.choice([1.0, 1.5, 2.0, 3.0])),
        )
        starts = tuple(int(w) for w in rng.choice(np.arange(60, 355), size=5, replace=False))
        counts, _ = simulate_series(scenario, N_WEEKS, seed=i, outbreak_starts=starts)
        series[f"s{i}"] = counts.tolist()
    return series


def run_python(series: dict[str, list[int]]) -> dict[str, float]:
    times: dict[str, float] = {}
    for name, (_, _, _, detector) in METHODS.items():
        start = time.perf_counter()
        for counts in series.values():
            detector(counts)
        times[name] = time.perf_counter() - start
    return times


def run_r(series: dict[str, list[int]]) -> dict[str, float] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    spec = {
        "series": [{"id": k, "observed": v} for k, v in series.items()],
        "runs": [
            {"id": f"{name}|{sid}", "series": sid, "method": m, "range": list(r), "control": c}
            for name, (m, r, c, _) in METHODS.items()
            for sid in series
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        done = subprocess.run(
            [rscript, str(REFERENCE), str(spec_path), str(out_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"R run failed: {done.stderr.strip().splitlines()[-1:]}")
            return None
        result = json.loads(out_path.read_text())
    times: dict[str, float] = dict.fromkeys(METHODS, 0.0)
    for run in result["runs"]:
        times[run["id"].split("|")[0]] += float(run["seconds"])
    return times


def main() -> None:
    n_series = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    series = make_series(n_series)
    print(
        f"{n_series} series of {N_WEEKS} weeks; Farrington evaluates {FARRINGTON_RANGE}, "
        f"glrnb monitors {GLRNB_RANGE}, EARS every week"
    )
    py_rounds = [run_python(series) for _ in range(ROUNDS)]
    py = {name: min(t[name] for t in py_rounds) for name in METHODS}
    r_rounds = [run_r(series) for _ in range(ROUNDS)]
    r = None
    if all(t is not None for t in r_rounds):
        r = {name: min(t[name] for t in r_rounds if t is not None) for name in METHODS}
    print(f"best of {ROUNDS} rounds per side")
    print(f"{'method':<12} {'python s':>10} {'R s':>10} {'R / python':>11}")
    for name in METHODS:
        r_time = f"{r[name]:10.3f}" if r else f"{'-':>10}"
        ratio = f"{r[name] / py[name]:10.1f}x" if r and py[name] > 0 else f"{'-':>11}"
        print(f"{name:<12} {py[name]:10.3f} {r_time} {ratio}")
    total_py = sum(py.values())
    if r:
        total_r = sum(r.values())
        print(f"{'all':<12} {total_py:10.3f} {total_r:10.3f} {total_r / total_py:10.1f}x")
    else:
        print(f"{'all':<12} {total_py:10.3f}  (Rscript with surveillance not found: no R baseline)")


if __name__ == "__main__":
    main()
