"""Pairwise precision, recall and F1 over all and cross-source pairs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkwatch.linkage.evaluation import evaluate_clusters, threshold_curve


def test_scores_count_pairs_of_clusters() -> None:
    truth = {"a": "1", "b": "1", "c": "1", "d": "2", "e": "3"}
    # Predicted: {a, b}, {c, d}, {e} → pairs ab (true), cd (false); true pairs ab, ac, bc.
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z"}
    result = evaluate_clusters(predicted, truth)
    assert (
        result.all_pairs.true_positives,
        result.all_pairs.predicted_pairs,
        result.all_pairs.true_pairs,
    ) == (1, 2, 3)
    assert result.all_pairs.precision == pytest.approx(0.5)
    assert result.all_pairs.recall == pytest.approx(1 / 3)
    assert result.all_pairs.f1 == pytest.approx(0.4)
    assert (result.predicted_persons, result.true_persons) == (3, 3)
    assert (result.predicted_singletons, result.true_singletons) == (1, 2)


def test_cross_source_scores_ignore_pairs_within_one_source() -> None:
    truth = {"g1": "p", "g2": "p", "h1": "p"}
    predicted = {"g1": "x", "g2": "x", "h1": "y"}
    sources = {"g1": "gp", "g2": "gp", "h1": "hospital"}
    result = evaluate_clusters(predicted, truth, sources)
    assert result.all_pairs.recall == pytest.approx(1 / 3)
    assert result.cross_source.true_pairs == 2  # g1-h1, g2-h1
    assert result.cross_source.predicted_pairs == 0
    assert result.cross_source.recall == 0.0
    assert result.cross_source.precision == 1.0


def test_records_missing_from_the_truth_are_counted_not_scored() -> None:
    result = evaluate_clusters({"a": "x", "b": "x", "q": "x"}, {"a": "1", "b": "1"})
    assert result.records_without_truth == 1
    assert result.all_pairs.f1 == 1.0


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
def test_truth_against_itself_is_perfect(people: list[int]) -> None:
    truth = {str(i): str(p) for i, p in enumerate(people)}
    result = evaluate_clusters(truth, truth)
    assert result.all_pairs.precision == result.all_pairs.recall == 1.0


def test_threshold_curve_trades_precision_for_recall() -> None:
    truth = {"a": "1", "b": "1", "c": "2", "d": "2", "e": "3"}
    pairs = [("a", "b", 10.0), ("c", "d", 2.0), ("a", "e", 1.0), ("b", "e", -5.0)]
    low, mid, high = threshold_curve(pairs, truth, [-10.0, 1.5, 5.0])
    assert (low.precision, low.recall) == (0.5, 1.0)
    assert (mid.precision, mid.recall) == (1.0, 1.0)
    assert (high.precision, high.recall) == (1.0, 0.5)
