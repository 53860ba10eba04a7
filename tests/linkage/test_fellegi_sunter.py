"""EM convergence on data with known m and u, training, and the model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from linkwatch.linkage.dutch_identities import make_population
from linkwatch.linkage.fellegi_sunter import (
    MODEL_FORMAT_VERSION,
    FellegiSunterModel,
    ModelFileError,
    TrainingOptions,
    probability_to_weight,
    run_em,
    train_model,
    weight_to_probability,
)
from linkwatch.linkage.standardise import standardise


def test_em_recovers_known_m_and_prior() -> None:
    rng = np.random.default_rng(7)
    true_m = [
        np.array([1.0, 0.85, 0.10, 0.05]),
        np.array([1.0, 0.7, 0.2, 0.1]),
        np.array([1.0, 0.9, 0.1]),
    ]
    u = [
        np.array([1.0, 0.01, 0.09, 0.90]),
        np.array([1.0, 0.05, 0.15, 0.80]),
        np.array([1.0, 0.02, 0.98]),
    ]
    n, prior = 60_000, 0.2
    is_match = rng.random(n) < prior
    matrix = np.zeros((n, len(u)), dtype=np.int8)
    for k in range(len(u)):
        levels = np.arange(1, len(u[k]))
        matrix[is_match, k] = rng.choice(levels, size=is_match.sum(), p=true_m[k][1:])
        matrix[~is_match, k] = rng.choice(levels, size=(~is_match).sum(), p=u[k][1:])
    # Some values are missing: level 0 weighs nothing and must not bias m.
    matrix[rng.random(n) < 0.1, 0] = 0
    start = [
        np.array([1.0, 0.6, 0.3, 0.1]),
        np.array([1.0, 0.6, 0.3, 0.1]),
        np.array([1.0, 0.6, 0.4]),
    ]
    m, estimated_prior, iterations, converged = run_em(
        matrix, start, u, [True, True, True], prior=0.5, max_iterations=200
    )
    assert converged
    assert iterations < 200
    assert estimated_prior == pytest.approx(prior, abs=0.01)
    for estimated, true in zip(m, true_m, strict=True):
        np.testing.assert_allclose(estimated[1:], true[1:], atol=0.02)


def test_inactive_comparisons_are_left_alone_by_em() -> None:
    matrix = np.array([[1, 1], [2, 2], [1, 2]] * 50, dtype=np.int8)
    u = [np.array([1.0, 0.1, 0.9]), np.array([1.0, 0.1, 0.9])]
    start = [np.array([1.0, 0.5, 0.5]), np.array([1.0, 0.5, 0.5])]
    m, *_ = run_em(matrix, start, u, [True, False], prior=0.3)
    np.testing.assert_array_equal(m[1], start[1])
    assert not np.array_equal(m[0], start[0])


def test_weights_and_probabilities_are_inverse() -> None:
    for p in (0.001, 0.2, 0.5, 0.9, 0.9999):
        assert weight_to_probability(probability_to_weight(p)) == pytest.approx(p)


@pytest.fixture(scope="module")
def model() -> FellegiSunterModel:
    raw, _ = make_population(1500, seed=11)
    return train_model([standardise(r) for r in raw], options=TrainingOptions(u_pairs=40_000))


def test_training_learns_sensible_weights(model: FellegiSunterModel) -> None:
    by_name = {c.spec.name: c for c in model.comparisons}
    for name in ("national_id", "given_name", "family_name", "date_of_birth", "address"):
        levels = by_name[name].levels
        assert levels[0].weight == 0.0  # missing weighs nothing
        assert levels[1].weight > 3  # agreement is evidence for a match
        assert levels[-1].weight < 0  # disagreement is evidence against
    dob = [lvl.weight for lvl in by_name["date_of_birth"].levels]
    assert dob[1] > dob[3] > dob[-1]  # exact > one component off > else
    assert 0 < model.prior < 0.01
    assert all(model.summary.em_converged.values())


def test_model_round_trips_through_json(model: FellegiSunterModel, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    model.save(path)
    loaded = FellegiSunterModel.load(path)
    assert loaded.to_json() == model.to_json()
    flat = [w for weights in model.level_weights() for w in weights]
    assert [w for weights in loaded.level_weights() for w in weights] == pytest.approx(flat)
    document = json.loads(path.read_text())
    first_level = document["comparisons"][0]["levels"][1]
    assert {"label", "description", "m", "u", "weight"} <= set(first_level)


def test_other_versions_and_missing_fields_are_refused(
    model: FellegiSunterModel, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    document = model.to_json()
    path.write_text(json.dumps({**document, "format_version": MODEL_FORMAT_VERSION + 1}))
    with pytest.raises(ModelFileError, match="format version 2 is not supported"):
        FellegiSunterModel.load(path)
    path.write_text(json.dumps({k: v for k, v in document.items() if k != "prior"}))
    with pytest.raises(ModelFileError, match="missing field 'prior'"):
        FellegiSunterModel.load(path)
    broken = json.loads(json.dumps(document))
    del broken["comparisons"][1]["levels"][2]["m"]
    path.write_text(json.dumps(broken))
    with pytest.raises(
        ModelFileError, match=r"comparison 'given_name' level 2 .* missing field 'm'"
    ):
        FellegiSunterModel.load(path)
    path.write_text("{not json")
    with pytest.raises(ModelFileError, match="not JSON"):
        FellegiSunterModel.load(path)
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="not a linkwatch model"):
        FellegiSunterModel.load(path)


def test_em_leaves_address_passes_out_unless_asked() -> None:
    from linkwatch.linkage.blocking import DEFAULT_PASSES
    from linkwatch.linkage.fellegi_sunter import em_pass_names

    default = em_pass_names(DEFAULT_PASSES, TrainingOptions())
    assert "PC4 + house number" not in default
    assert "date of birth" in default
    chosen = em_pass_names(DEFAULT_PASSES, TrainingOptions(em_passes=("PC4 + house number",)))
    assert chosen == ["PC4 + house number"]
