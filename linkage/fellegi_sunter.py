"""The Fellegi-Sunter model: m and u probabilities per comparison level, trained unsupervised.

For a pair of records each comparison lands in one level. Under the model the pair's match
weight is the prior log-odds plus, per comparison, ``log2(m / u)`` of its level, where ``m`` is
the level's probability among true matches and ``u`` among non-matches; missing values weigh
nothing. Training follows the usual unsupervised recipe (as in Splink):

* **u** from record pairs drawn at random (almost all are non-matches). The exact-agreement
  level of a single column is computed from the value frequencies instead, because random
  sampling rarely meets a rare agreement such as two equal national ids.
* **m** by expectation-maximisation on the blocked pairs of each blocking pass, with u held
  fixed; the comparisons a pass's key fixes are left out of that pass (its pairs agree on them by
  construction). The m of a comparison is the mean over the passes that estimated it.
* the **prior** (share of matches among all pairs) as the fixed point of "expected matches in
  the blocked pairs / all pairs".

Exact name agreements get a term-frequency adjustment at scoring time: agreeing on a rare surname
says more than agreeing on "de Jong". The model is saved as readable JSON with every level's
description, m, u and weight, and a format version; other versions are refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from linkwatch.linkage.batch import RecordBatch
from linkwatch.linkage.blocking import (
    DEFAULT_BLOCK_CAP,
    DEFAULT_PASSES,
    BlockingPass,
    passes_from_json,
    union_of_pairs,
)
from linkwatch.linkage.bulk import collector_paused
from linkwatch.linkage.comparisons import (
    DEFAULT_COMPARISONS,
    ComparisonConfigError,
    ComparisonSpec,
    CompiledComparisons,
    LevelSpec,
)
from linkwatch.linkage.record_store import RecordStore
from linkwatch.linkage.standardise import StandardRecord

MODEL_FORMAT = "linkwatch-fellegi-sunter"
MODEL_FORMAT_VERSION = 1

# Probabilities are kept away from 0 and 1 so that no single level can veto or force a match.
_PROBABILITY_FLOOR = 1e-6


class ModelFileError(ValueError):
    """A model file that cannot be used: wrong format, other version, or missing fields."""


@dataclass(slots=True)
class LevelParameters:
    """A comparison level with its trained m and u probabilities."""

    spec: LevelSpec
    m: float
    u: float

    @property
    def bayes_factor(self) -> float:
        """m / u (1 for the missing level)."""
        return 1.0 if self.spec.is_null else self.m / self.u

    @property
    def weight(self) -> float:
        """log2(m / u): the level's contribution to a pair's match weight (0 when missing)."""
        return 0.0 if self.spec.is_null else math.log2(self.m / self.u)


@dataclass(slots=True)
class ComparisonParameters:
    """A comparison with its levels' parameters."""

    spec: ComparisonSpec
    levels: list[LevelParameters]


@dataclass(slots=True)
class TrainingSummary:
    """How the model was trained (kept in the model file for the reader)."""

    records: int = 0
    u_pairs: int = 0
    em_pairs: dict[str, int] = field(default_factory=dict)
    em_iterations: dict[str, int] = field(default_factory=dict)
    em_converged: dict[str, bool] = field(default_factory=dict)
    expected_matches: float = 0.0


@dataclass(slots=True)
class FellegiSunterModel:
    """A trained model: comparisons with m/u, prior, thresholds and the blocking passes."""

    comparisons: list[ComparisonParameters]
    prior: float
    passes: tuple[BlockingPass, ...] = DEFAULT_PASSES
    link_threshold: float = 0.8
    review_threshold: float = 0.05
    block_cap: int = DEFAULT_BLOCK_CAP
    tf_minimum: float = 1e-4
    #: Pseudo-count of records at the level's u when estimating a value's frequency, so that
    #: the first few records of an online engine do not make every name look common.
    tf_smoothing: float = 1000.0
    summary: TrainingSummary = field(default_factory=TrainingSummary)

    @property
    def specs(self) -> tuple[ComparisonSpec, ...]:
        """The comparison table."""
        return tuple(c.spec for c in self.comparisons)

    @property
    def prior_weight(self) -> float:
        """log2 of the prior odds of a match."""
        return math.log2(self.prior / (1.0 - self.prior))

    @property
    def link_weight(self) -> float:
        """Match weight at the link threshold."""
        return probability_to_weight(self.link_threshold)

    @property
    def review_weight(self) -> float:
        """Match weight at the review threshold."""
        return probability_to_weight(self.review_threshold)

    def level_weights(self) -> list[list[float]]:
        """Per comparison, the weight of each level."""
        return [[lvl.weight for lvl in c.levels] for c in self.comparisons]

    def level_u(self) -> list[list[float]]:
        """Per comparison, the u probability of each level."""
        return [[lvl.u for lvl in c.levels] for c in self.comparisons]

    def match_weight(self, levels: Sequence[int]) -> float:
        """Match weight of a comparison vector (without term-frequency adjustment)."""
        return self.prior_weight + sum(
            c.levels[index].weight for c, index in zip(self.comparisons, levels, strict=True)
        )

    def match_weights(self, matrix: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
        """Match weights of many comparison vectors (rows of level indices)."""
        total = np.full(len(matrix), self.prior_weight)
        for k, weights in enumerate(self.level_weights()):
            total += np.asarray(weights)[matrix[:, k]]
        return total

    # --- JSON -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The model as a readable JSON document."""
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "prior": self.prior,
            "prior_weight": round(self.prior_weight, 4),
            "link_threshold": self.link_threshold,
            "review_threshold": self.review_threshold,
            "block_cap": self.block_cap,
            "tf_minimum": self.tf_minimum,
            "tf_smoothing": self.tf_smoothing,
            "blocking_passes": [p.as_dict() for p in self.passes],
            "comparisons": [
                {
                    **c.spec.as_dict(),
                    "levels": [
                        {
                            **lvl.spec.as_dict(),
                            "m": lvl.m,
                            "u": lvl.u,
                            "weight": round(lvl.weight, 4),
                        }
                        for lvl in c.levels
                    ],
                }
                for c in self.comparisons
            ],
            "training": {
                "records": self.summary.records,
                "u_pairs": self.summary.u_pairs,
                "em_pairs": self.summary.em_pairs,
                "em_iterations": self.summary.em_iterations,
                "em_converged": self.summary.em_converged,
                "expected_matches": round(self.summary.expected_matches, 2),
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FellegiSunterModel:
        """Read a model document, refusing other formats, versions and missing fields."""
        if not isinstance(data, Mapping) or data.get("format") != MODEL_FORMAT:
            raise ModelFileError(f'not a linkwatch model (expected "format": "{MODEL_FORMAT}")')
        version = data.get("format_version")
        if version != MODEL_FORMAT_VERSION:
            raise ModelFileError(
                f"model format version {version!r} is not supported (this linkwatch reads "
                f"version {MODEL_FORMAT_VERSION}); retrain with `linkwatch linkage train`"
            )
        for key in (
            "prior",
            "link_threshold",
            "review_threshold",
            "blocking_passes",
            "comparisons",
        ):
            if key not in data:
                raise ModelFileError(f"model is missing field {key!r}")
        comparisons: list[ComparisonParameters] = []
        try:
            for ci, raw in enumerate(data["comparisons"]):
                spec = ComparisonSpec.from_dict(raw, f"comparison {ci}")
                levels: list[LevelParameters] = []
                for li, (lvl_spec, raw_level) in enumerate(
                    zip(spec.levels, raw["levels"], strict=True)
                ):
                    for key in ("m", "u"):
                        if key not in raw_level:
                            raise ModelFileError(
                                f"model comparison {spec.name!r} level {li} ({lvl_spec.label!r}) "
                                f"is missing field {key!r}"
                            )
                    levels.append(
                        LevelParameters(lvl_spec, float(raw_level["m"]), float(raw_level["u"]))
                    )
                comparisons.append(ComparisonParameters(spec, levels))
            passes = passes_from_json(data["blocking_passes"])
        except (ComparisonConfigError, ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                f"model has an invalid comparison or blocking pass: {exc}"
            ) from None
        prior = float(data["prior"])
        if not 0.0 < prior < 1.0:
            raise ModelFileError(f"model prior must be in (0, 1), got {prior}")
        training = data.get("training", {})
        return cls(
            comparisons=comparisons,
            prior=prior,
            passes=passes,
            link_threshold=float(data["link_threshold"]),
            review_threshold=float(data["review_threshold"]),
            block_cap=int(data.get("block_cap", DEFAULT_BLOCK_CAP)),
            tf_minimum=float(data.get("tf_minimum", 1e-4)),
            tf_smoothing=float(data.get("tf_smoothing", 1000.0)),
            summary=TrainingSummary(
                records=int(training.get("records", 0)),
                u_pairs=int(training.get("u_pairs", 0)),
                em_pairs=dict(training.get("em_pairs", {})),
                em_iterations=dict(training.get("em_iterations", {})),
                em_converged=dict(training.get("em_converged", {})),
                expected_matches=float(training.get("expected_matches", 0.0)),
            ),
        )

    def save(self, path: Path) -> None:
        """Write the model as indented JSON."""
        path.write_text(
            json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(cls, path: Path) -> FellegiSunterModel:
        """Read a model file (refusing other formats and versions with a clear message)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{path}: not JSON ({exc})") from None
        try:
            return cls.from_json(data)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None


def probability_to_weight(probability: float) -> float:
    """Match weight (log2 odds) of a match probability."""
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def weight_to_probability(weight: float) -> float:
    """Match probability of a match weight."""
    return 1.0 / (1.0 + math.pow(2.0, -max(min(weight, 1000.0), -1000.0)))


# --- training -------------------------------------------------------------------------------

ProgressCallback = Callable[[str, int, int], None]
"""Called as (stage, done, total) during training."""


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    """Knobs of unsupervised training."""

    u_pairs: int = 150_000
    # Link at a match probability of 0.8 (odds 4:1) rather than 0.5: a false link joins two
    # whole persons, which costs more pairs than one missed link, so precision is worth more.
    em_pairs_per_pass: int = 300_000
    max_iterations: int = 50
    tolerance: float = 1e-5
    seed: int = 42
    link_threshold: float = 0.8
    review_threshold: float = 0.05
    block_cap: int = DEFAULT_BLOCK_CAP
    #: Passes whose pairs train m by EM; None = every pass whose key is not an address.
    #: Pairs that share an address are mostly members of one household (same surname, same
    #: address, different given names and dates of birth): EM would take "same household" for
    #: "same person" and learn that a true match often disagrees on name and birth date.
    em_passes: tuple[str, ...] | None = None


def em_pass_names(passes: Sequence[BlockingPass], options: TrainingOptions) -> list[str]:
    """The passes that train m (see :attr:`TrainingOptions.em_passes`)."""
    if options.em_passes is not None:
        return [p.name for p in passes if p.name in options.em_passes]
    address_parts = {"postcode", "pc4", "house_number"}
    chosen = [p.name for p in passes if not address_parts & set(p.parts)]
    return chosen or [p.name for p in passes]


def _random_pairs(n: int, count: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    total = n * (n - 1) // 2
    if total <= count:
        i, j = np.triu_indices(n, k=1)
        return np.stack([i, j], axis=1).astype(np.int64)
    a = rng.integers(0, n, size=count * 2)
    b = rng.integers(0, n, size=count * 2)
    keep = a != b
    a, b = a[keep][:count], b[keep][:count]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1).astype(np.int64)


def _level_counts(
    matrix: npt.NDArray[np.int8],
    k: int,
    n_levels: int,
    weights: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    return np.bincount(matrix[:, k].astype(np.int64), weights=weights, minlength=n_levels).astype(
        np.float64
    )


def _exact_agreement_u(store: RecordStore, column: str) -> float | None:
    """P(two distinct records agree on ``column`` | both have it), from the value counts."""
    values = np.frombuffer(store.columns[column], dtype=np.int32)
    values = values[values != 0]
    n = len(values)
    if n < 2:
        return None
    counts = np.bincount(values).astype(np.float64)
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def estimate_u(
    specs: Sequence[ComparisonSpec],
    store: RecordStore,
    compiled: CompiledComparisons,
    options: TrainingOptions,
    progress: ProgressCallback | None = None,
) -> tuple[list[npt.NDArray[np.float64]], npt.NDArray[np.int8]]:
    """u probabilities per comparison level from random pairs (exact levels from frequencies).

    Returns the u tables and the comparison matrix of the random pairs (to refine u later).
    """
    rng = np.random.default_rng(options.seed)
    pairs = _random_pairs(len(store), options.u_pairs, rng)
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress("u from random pairs", done, len(pairs))

    matrix = compiled.comparison_matrix(pairs, tick)
    return u_from_matrix(specs, store, matrix), matrix


def u_from_matrix(
    specs: Sequence[ComparisonSpec],
    store: RecordStore,
    matrix: npt.NDArray[np.int8],
    non_match_weights: npt.NDArray[np.float64] | None = None,
) -> list[npt.NDArray[np.float64]]:
    """u tables from the comparison matrix of random pairs.

    ``non_match_weights`` (each pair's probability of being a non-match) removes the few true
    matches that random sampling draws; they would otherwise inflate u of the best levels.
    """
    out: list[npt.NDArray[np.float64]] = []
    for k, spec in enumerate(specs):
        n_levels = len(spec.levels)
        counts = _level_counts(matrix, k, n_levels, non_match_weights)
        counts[0] = 0.0
        # Half a pair for levels never seen, so no level has u = 0.
        counts[1:] += 0.5
        u = counts / counts[1:].sum()
        exact = spec.levels[1]
        if exact.kind == "exact":
            analytic = _exact_agreement_u(store, exact.params["column"])
            if analytic is not None and analytic > 0:
                rest = u[2:].sum()
                u[1] = analytic
                u[2:] = u[2:] / rest * (1.0 - analytic) if rest > 0 else u[2:]
        u = np.clip(u, _PROBABILITY_FLOOR, 1.0)
        u[0] = 1.0
        out.append(u)
    return out


def distinct_rows(
    matrix: npt.NDArray[np.int8],
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    """The distinct rows of a comparison matrix, and how many rows each one stands for."""
    if len(matrix) == 0:
        return matrix, np.zeros(0, dtype=np.float64)
    width = matrix.shape[1]
    radix = [int(matrix[:, k].max()) + 1 for k in range(width)]
    if matrix.min() >= 0 and math.prod(radix) <= 1 << 22:
        # A row is one number written with a digit per comparison: the rows are counted in a
        # table of every number, which needs no sort, and the numbers present read back.
        codes = np.zeros(len(matrix), dtype=np.int64)
        for k in range(width):
            codes = codes * radix[k] + matrix[:, k]
        table = np.bincount(codes, minlength=math.prod(radix))
        present = np.flatnonzero(table)
        patterns = np.empty((len(present), width), dtype=matrix.dtype)
        rest = present.copy()
        for k in reversed(range(width)):
            patterns[:, k] = rest % radix[k]
            rest //= radix[k]
        return patterns, table[present].astype(np.float64)
    patterns, counts = np.unique(matrix, axis=0, return_counts=True)
    return patterns, counts.astype(np.float64)


def _initial_m(n_levels: int) -> npt.NDArray[np.float64]:
    # Start with most matches in the best level, decreasing after: EM moves from there.
    raw = np.array([0.0] + [0.5**i for i in range(n_levels - 1)])
    raw[1:] = raw[1:] / raw[1:].sum()
    raw[0] = 1.0
    return raw


def run_em(
    matrix: npt.NDArray[np.int8],
    m: list[npt.NDArray[np.float64]],
    u: Sequence[npt.NDArray[np.float64]],
    active: Sequence[bool],
    prior: float,
    max_iterations: int = 50,
    tolerance: float = 1e-5,
) -> tuple[list[npt.NDArray[np.float64]], float, int, bool]:
    """Expectation-maximisation of m (u fixed) on a matrix of comparison vectors.

    Only ``active`` comparisons enter the E-step and have their m updated. Returns
    (m, prior within these pairs, iterations, converged).
    """
    m = [arr.copy() for arr in m]
    log_bf_tables = [np.zeros(len(arr)) for arr in m]
    # Pairs with the same comparison vector have the same posterior: every step works on the
    # distinct vectors, each weighted by the number of pairs that have it.
    patterns, pairs_with = distinct_rows(matrix)
    n_pairs = float(len(matrix))
    levels = [patterns[:, k].astype(np.int64) if on else None for k, on in enumerate(active)]
    converged = False
    iteration = 0
    while iteration < max_iterations:
        iteration += 1
        for k, on in enumerate(active):
            table = np.zeros(len(m[k]))
            if on:
                table[1:] = np.log(m[k][1:]) - np.log(u[k][1:])
            log_bf_tables[k] = table
        log_bf = np.zeros(len(patterns))
        for k, on in enumerate(active):
            if on:
                log_bf += log_bf_tables[k][patterns[:, k]]
        logit = np.log(prior) - np.log1p(-prior) + log_bf
        # The expected number of matches among the pairs of each distinct vector.
        matches = pairs_with / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        new_prior = float(np.clip(matches.sum() / n_pairs, 1e-9, 1 - 1e-9))
        change = abs(new_prior - prior)
        for k, column in enumerate(levels):
            if column is None:
                continue
            counts = np.bincount(column, weights=matches, minlength=len(m[k]))
            counts[0] = 0.0
            total = counts[1:].sum()
            if total <= 0:
                continue
            new_m = np.clip(counts / total, _PROBABILITY_FLOOR, 1.0)
            new_m[1:] /= new_m[1:].sum()
            new_m[0] = 1.0
            change = max(change, float(np.abs(new_m - m[k]).max()))
            m[k] = new_m
        prior = new_prior
        if change < tolerance:
            converged = True
            break
    return m, prior, iteration, converged


def train_model(
    records: Sequence[StandardRecord],
    specs: Sequence[ComparisonSpec] = DEFAULT_COMPARISONS,
    passes: Sequence[BlockingPass] = DEFAULT_PASSES,
    options: TrainingOptions | None = None,
    progress: ProgressCallback | None = None,
    batch: RecordBatch | None = None,
) -> FellegiSunterModel:
    """Train a Fellegi-Sunter model on unlabelled records.

    ``batch`` (a :class:`RecordBatch` of these very records) lends its codes and blocking
    keys, and keeps the comparison levels of the blocked pairs for linking the batch after.
    """
    with collector_paused():
        return _train_model(records, specs, passes, options or TrainingOptions(), progress, batch)


def _train_model(
    records: Sequence[StandardRecord],
    specs: Sequence[ComparisonSpec],
    passes: Sequence[BlockingPass],
    options: TrainingOptions,
    progress: ProgressCallback | None,
    batch: RecordBatch | None,
) -> FellegiSunterModel:
    if len(records) < 2:
        raise ValueError("training needs at least two records")
    if batch is None or not batch.holds(records):
        batch = RecordBatch(records)
    store = batch.store
    compiled = CompiledComparisons(specs, store)
    u, random_matrix = estimate_u(specs, store, compiled, options, progress)
    per_pass, _ = batch.blocked_pairs(passes, options.block_cap)
    rng = np.random.default_rng(options.seed + 1)
    summary = TrainingSummary(records=len(records), u_pairs=len(random_matrix))

    # The union of the blocked pairs serves the prior, and the EM passes take their rows from
    # it. Its pairs are all compared when that is no more work than comparing the samples
    # (the union's for the prior, each pass's for EM), which it then also serves (and keeps,
    # in the batch, for linking), and the prior is worked out on all of them; otherwise only
    # the samples are compared, and the prior is worked out on the union's sample.
    union = union_of_pairs(per_pass)
    training = set(em_pass_names(passes, options))
    sample_size = 4 * options.em_pairs_per_pass
    sampled = len(union) > sample_size
    samples = sample_size + options.em_pairs_per_pass * len(training)
    compare_all = not sampled or len(union) <= samples
    compared = union
    done, total = 0, len(union) if compare_all else sample_size

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress("comparing blocked pairs", done, total)

    compared_matrix = compiled.comparison_matrix(union, tick) if compare_all else None
    if compared_matrix is not None:
        batch.remember_levels(specs, union, compared_matrix, ordered=True)
    scale = 1.0
    union_matrix = compared_matrix
    if union_matrix is None:
        scale = len(union) / sample_size
        union = union[rng.choice(len(union), sample_size, replace=False)]
        compared = union
        union_matrix = compiled.comparison_matrix(union, tick)
        batch.remember_levels(specs, union, union_matrix)
    # union_of_pairs returns sorted, distinct pair codes: each pair's row is found by search.
    compared_codes = (compared[:, 0] << 32) | compared[:, 1]

    pass_matrices: dict[str, npt.NDArray[np.int8]] = {}
    for p in passes:
        pairs = per_pass[p.name]
        if p.name not in training:
            continue
        # A pass's pairs are sorted too: they are found in the union in one ordered search.
        rows = None
        if compared_matrix is not None:
            rows = np.searchsorted(compared_codes, (pairs[:, 0] << 32) | pairs[:, 1])
        if len(pairs) > options.em_pairs_per_pass:
            chosen = rng.choice(len(pairs), options.em_pairs_per_pass, replace=False)
            pairs = pairs[chosen]
            rows = None if rows is None else rows[chosen]
        summary.em_pairs[p.name] = len(pairs)
        if compared_matrix is None or rows is None:
            pass_matrices[p.name] = compiled.comparison_matrix(pairs)
        else:
            pass_matrices[p.name] = compared_matrix[rows]

    model = FellegiSunterModel(
        comparisons=[],
        prior=1.0 / max(len(records), 2),
        passes=tuple(passes),
        link_threshold=options.link_threshold,
        review_threshold=options.review_threshold,
        block_cap=options.block_cap,
        summary=summary,
    )
    # Two rounds: the second takes the random pairs that the first model calls matches out of u.
    for round_number in (1, 2):
        m = _em_over_passes(
            specs, passes, pass_matrices, u, options, summary, progress, round_number
        )
        model.comparisons = [
            ComparisonParameters(
                spec,
                [
                    LevelParameters(lvl, float(m[k][i]), float(u[k][i]))
                    for i, lvl in enumerate(spec.levels)
                ],
            )
            for k, spec in enumerate(specs)
        ]
        if len(union_matrix):
            model.prior, summary.expected_matches = estimate_prior(
                model, union_matrix, len(records), scale
            )
        if round_number == 1:
            weights = model.match_weights(random_matrix)
            non_match = 1.0 - 1.0 / (1.0 + np.exp2(-np.clip(weights, -1000, 1000)))
            u = u_from_matrix(specs, store, random_matrix, non_match)
    return model


def _em_over_passes(
    specs: Sequence[ComparisonSpec],
    passes: Sequence[BlockingPass],
    pass_matrices: Mapping[str, npt.NDArray[np.int8]],
    u: Sequence[npt.NDArray[np.float64]],
    options: TrainingOptions,
    summary: TrainingSummary,
    progress: ProgressCallback | None,
    round_number: int,
) -> list[npt.NDArray[np.float64]]:
    """EM per blocking pass (fixing the comparisons its key constrains); m is the mean."""
    m_sums = [np.zeros(len(spec.levels)) for spec in specs]
    m_counts = [0 for _ in specs]
    training = set(em_pass_names(passes, options))
    for p in passes:
        if p.name not in pass_matrices:
            continue
        matrix = pass_matrices[p.name]
        if len(matrix) < 10 or p.name not in training:
            continue
        fixed = p.constrained_comparisons
        active = [spec.name not in fixed for spec in specs]
        m0 = [_initial_m(len(spec.levels)) for spec in specs]
        m_pass, _, iterations, converged = run_em(
            matrix,
            m0,
            u,
            active,
            prior=0.1,
            max_iterations=options.max_iterations,
            tolerance=options.tolerance,
        )
        summary.em_iterations[p.name] = iterations
        summary.em_converged[p.name] = converged
        if progress:
            progress(f"EM on pass {p.name!r} (round {round_number})", iterations, iterations)
        for k, on in enumerate(active):
            if on:
                m_sums[k] += m_pass[k]
                m_counts[k] += 1
    m_final: list[npt.NDArray[np.float64]] = []
    for k, spec in enumerate(specs):
        m_k = m_sums[k] / m_counts[k] if m_counts[k] else _initial_m(len(spec.levels))
        m_k = np.clip(m_k, _PROBABILITY_FLOOR, 1.0)
        m_k[1:] /= m_k[1:].sum()
        m_k[0] = 1.0
        m_final.append(m_k)
    return m_final


def estimate_prior(
    model: FellegiSunterModel, matrix: npt.NDArray[np.int8], n_records: int, scale: float = 1.0
) -> tuple[float, float]:
    """Prior as the fixed point of expected matches among blocked pairs over all pairs.

    ``scale`` multiplies the expected count when ``matrix`` is a sample of the blocked pairs.
    Returns (prior, expected matches).
    """
    total_pairs = n_records * (n_records - 1) / 2
    # Worked out once per distinct comparison vector, weighted by its pairs (see run_em).
    patterns, pairs_with = distinct_rows(matrix)
    base = model.match_weights(patterns) - model.prior_weight
    prior = model.prior
    expected = 0.0
    for _ in range(100):
        logit = (math.log(prior) - math.log1p(-prior)) + base * math.log(2)
        posterior = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        expected = float(posterior @ pairs_with) * scale
        new_prior = min(max(expected / total_pairs, 1e-12), 0.5)
        if abs(new_prior - prior) <= 1e-6 * prior:
            prior = new_prior
            break
        prior = new_prior
    return prior, expected
