"""Evaluation of a clustering against the truth: pairwise precision, recall and F1.

A clustering implies a set of record pairs (every two records with the same person id); so does
the truth. Precision, recall and F1 are computed over those pair sets by counting, not by
listing pairs: for a group of n records there are n(n-1)/2 pairs, and the pairs both sets share
are counted per (predicted person, true person) cell. Cross-source figures count only pairs
whose two records come from different sources (GP ↔ hospital, say), which is what linkage
across providers is for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class PairwiseScores:
    """Pair counts and the scores they give."""

    true_positives: int
    predicted_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        """Share of predicted pairs that are true (1.0 when nothing was predicted)."""
        return self.true_positives / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        """Share of true pairs that were predicted (1.0 when there are none)."""
        return self.true_positives / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Scores over all pairs and over cross-source pairs, and cluster counts."""

    all_pairs: PairwiseScores
    cross_source: PairwiseScores
    records: int
    predicted_persons: int
    true_persons: int
    predicted_singletons: int
    true_singletons: int
    records_without_truth: int


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _cross_pairs(by_source: Counter[str]) -> int:
    total = sum(by_source.values())
    return _pairs(total) - sum(_pairs(c) for c in by_source.values())


def evaluate_clusters(
    predicted: Mapping[str, str],
    truth: Mapping[str, str],
    sources: Mapping[str, str] | None = None,
) -> Evaluation:
    """Compare predicted person ids with true ones over the records present in both.

    ``predicted`` and ``truth`` map record id → person id; ``sources`` maps record id → source
    (without it, every pair counts as cross-source).
    """
    common = [r for r in predicted if r in truth]
    sources = sources or {}
    pred_groups: dict[str, Counter[str]] = {}
    true_groups: dict[str, Counter[str]] = {}
    cells: dict[tuple[str, str], Counter[str]] = {}
    for record_id in common:
        source = sources.get(record_id, record_id)
        p, t = predicted[record_id], truth[record_id]
        pred_groups.setdefault(p, Counter())[source] += 1
        true_groups.setdefault(t, Counter())[source] += 1
        cells.setdefault((p, t), Counter())[source] += 1

    def scores(cross: bool) -> PairwiseScores:
        count = _cross_pairs if cross else (lambda c: _pairs(sum(c.values())))
        return PairwiseScores(
            true_positives=sum(count(c) for c in cells.values()),
            predicted_pairs=sum(count(c) for c in pred_groups.values()),
            true_pairs=sum(count(c) for c in true_groups.values()),
        )

    return Evaluation(
        all_pairs=scores(cross=False),
        cross_source=scores(cross=True),
        records=len(common),
        predicted_persons=len(pred_groups),
        true_persons=len(true_groups),
        predicted_singletons=sum(1 for c in pred_groups.values() if sum(c.values()) == 1),
        true_singletons=sum(1 for c in true_groups.values() if sum(c.values()) == 1),
        records_without_truth=len(predicted) - len(common),
    )


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    """Pairwise precision and recall of the scored pairs at or above one threshold."""

    threshold: float
    precision: float
    recall: float
    f1: float
    predicted_pairs: int


def threshold_curve(
    pair_weights: Sequence[tuple[str, str, float]],
    truth: Mapping[str, str],
    thresholds: Sequence[float] | npt.NDArray[np.float64],
    true_pairs: int | None = None,
) -> list[ThresholdPoint]:
    """Precision/recall of scored pairs as a function of the match-weight threshold.

    These are pair-level figures (before clustering): a pair counts as predicted when its weight
    is at or above the threshold. ``true_pairs`` defaults to the number of true pairs implied by
    ``truth``.
    """
    if true_pairs is None:
        true_pairs = sum(_pairs(n) for n in Counter(truth.values()).values())
    weights = np.array([w for _, _, w in pair_weights], dtype=np.float64)
    is_true = np.array(
        [a in truth and b in truth and truth[a] == truth[b] for a, b, _ in pair_weights], dtype=bool
    )
    points = []
    for threshold in thresholds:
        chosen = weights >= threshold
        predicted = int(chosen.sum())
        tp = int((chosen & is_true).sum())
        p = tp / predicted if predicted else 1.0
        r = tp / true_pairs if true_pairs else 1.0
        points.append(
            ThresholdPoint(float(threshold), p, r, 2 * p * r / (p + r) if p + r else 0.0, predicted)
        )
    return points
