"""Skip-path warm start: logistic regression on the standardised train split, C chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from celltosg.errors import SplitError
from celltosg.train import InMemoryCohort
from celltosg.train._finetune import prepare

from .conftest import make_cohort, small_config


def _prepare(cohort, graph, **kwargs):
    return prepare(cohort, task="cell_type", config=small_config(), graph=graph, seed=0, **kwargs)


def _skip_probabilities(setup, split):
    with torch.no_grad():
        return torch.softmax(setup.model.skip(setup.model.scale_input(setup.data[split][0])), 1).numpy()


def test_skip_path_starts_at_the_logistic_regression_of_the_train_split(cohort, graph):
    """The skip path's softmax equals an independent scikit-learn fit (balanced classes, the chosen C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    setup = _prepare(cohort, graph, skip_init="logreg")
    X_train, y_train = (np.asarray(a, dtype=np.float64) for a in setup.data["train"])
    scaler = StandardScaler().fit(X_train)
    reference = LogisticRegression(C=setup.run["skip_C"], max_iter=5000, class_weight="balanced")
    reference.fit(np.clip(scaler.transform(X_train), -setup.config.clip, setup.config.clip), y_train.astype(int))
    X_test = np.clip(scaler.transform(np.asarray(setup.data["test"][0], dtype=np.float64)),
                     -setup.config.clip, setup.config.clip)
    np.testing.assert_allclose(_skip_probabilities(setup, "test"), reference.predict_proba(X_test), atol=2e-3)


def test_random_init_keeps_an_untrained_skip_path(cohort, graph):
    """Without the warm start the skip path is a fresh Linear: far from fitting the train labels."""
    warm = _prepare(cohort, graph, skip_init="logreg")
    cold = _prepare(cohort, graph, skip_init="random")
    y = warm.data["train"][1]
    assert (_skip_probabilities(warm, "train").argmax(1) == y).mean() == 1.0
    assert _skip_probabilities(cold, "train").max() < 0.9
    assert cold.run["skip_C"] is None


def test_warm_start_never_sees_test_cells(tiny_kg, graph):
    """Scrambling the test cells' values and labels leaves the warm-started skip path unchanged."""
    base = make_cohort(tiny_kg)
    split = base.obs["split"].to_numpy()
    labels = base.obs["label"].to_numpy().copy()
    X = np.empty((len(split), tiny_kg.n_rna), dtype=np.float32)
    for s in ("train", "val", "test"):
        X[split == s] = base.X(s)
    test = split == "test"
    X2, labels2 = X.copy(), labels.copy()
    X2[test] = np.random.default_rng(1).permutation(X2[test].ravel()).reshape(X2[test].shape) * 4.0
    labels2[test] = np.roll(labels2[test], 1)
    first = _prepare(InMemoryCohort(X, split, tiny_kg, labels=labels), graph)
    second = _prepare(InMemoryCohort(X2, split, tiny_kg, labels=labels2), graph)
    assert torch.equal(first.model.skip.weight, second.model.skip.weight)
    assert torch.equal(first.model.skip.bias, second.model.skip.bias)


def test_unknown_skip_init_is_refused(cohort, graph):
    with pytest.raises(SplitError, match="skip_init"):
        _prepare(cohort, graph, skip_init="zeros")
