from __future__ import annotations

import numpy as np
import pytest
import torch

from celltosg.baselines import (
    CellTypistClassifier,
    GNNClassifier,
    LogisticRegressionClassifier,
    MLPClassifier,
    TorchFitConfig,
    accuracy,
    macro_f1,
)
from celltosg.errors import MalformedInputError

FAST = TorchFitConfig(lr=1e-2, epochs=40, batch_size=16, patience=10)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _marker_data(n_genes, n_classes=3, n=90, seed=0):
    """Class k lifts gene k by 3 on top of uniform noise in [0, 1): linearly separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.random((n, n_genes)).astype(np.float32)
    X[np.arange(n), y] += 3.0
    return X, y


def _level_data(n_genes, n_classes=3, n=90, seed=0):
    """Class k shifts every gene by k: separable by the mean level, which a node-pooling readout sees."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    return (rng.random((n, n_genes)) * 0.5 + y[:, None]).astype(np.float32), y


def _flat(n_classes, seed=0, **kw):
    return [
        LogisticRegressionClassifier(n_classes=n_classes, seed=seed, **kw),
        MLPClassifier(n_classes=n_classes, seed=seed, hidden=32, fit_config=FAST, device=torch.device("cpu")),
    ]


def test_separable_classes_are_learned_perfectly_by_every_flat_model():
    X, y = _marker_data(20)
    genes = np.array([f"G{i}" for i in range(20)])
    models = _flat(3) + [CellTypistClassifier(n_classes=3, genes=genes)]
    for model in models:
        model.fit(X[:60], y[:60], X[60:75], y[60:75])
        proba = model.predict_proba(X[75:])
        assert proba.shape == (15, 3)
        np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
        assert accuracy(y[75:], model.predict(X[75:])) == 1.0, model.name


@pytest.mark.parametrize("kind", ["gcn", "gat", "gin"])
def test_graph_baselines_learn_level_separated_classes(tiny_kg, kind):
    X, y = _level_data(tiny_kg.n_rna)
    model = GNNClassifier(n_classes=3, kg=tiny_kg, kind=kind, hidden=8, fit_config=FAST,
                          device=torch.device("cpu"))
    model.fit(X[:60], y[:60], X[60:75], y[60:75])
    proba = model.predict_proba(X[75:])
    assert proba.shape == (15, 3) and np.isfinite(proba).all()
    assert accuracy(y[75:], model.predict(X[75:])) == 1.0


def test_graph_baseline_checks_columns_against_the_graph(tiny_kg):
    X, y = _level_data(tiny_kg.n_rna - 1)
    with pytest.raises(MalformedInputError, match="align"):
        GNNClassifier(n_classes=3, kg=tiny_kg, fit_config=FAST).fit(X, y, X, y)


def test_a_class_missing_from_training_gets_a_zero_column():
    X, y = _marker_data(10, n_classes=3)
    keep = y < 2
    model = LogisticRegressionClassifier(n_classes=4).fit(X[keep], y[keep], X[keep], y[keep])
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 4)
    assert np.all(proba[:, 2:] == 0.0)


def test_same_seed_same_model_other_seed_other_model():
    X, y = _marker_data(20, n=60)
    X = X + np.random.default_rng(1).normal(0, 2.0, X.shape).astype(np.float32)  # noisy, so seeds matter
    fit = lambda seed: MLPClassifier(n_classes=3, seed=seed, hidden=32, dropout=0.3, fit_config=FAST,  # noqa: E731
                                     device=torch.device("cpu")).fit(X[:40], y[:40], X[40:], y[40:])
    a, b, c = fit(5).predict_proba(X), fit(5).predict_proba(X), fit(6).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_inputs_raise_clear_errors():
    X, y = _marker_data(5)
    model = LogisticRegressionClassifier(n_classes=3)
    with pytest.raises(MalformedInputError, match="labels must lie"):
        model.fit(X, y + 5, X, y)
    with pytest.raises(MalformedInputError, match="one label per row"):
        model.fit(X, y[:-1], X, y)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(MalformedInputError, match="NaN"):
        model.fit(bad, y, X, y)
    with pytest.raises(MalformedInputError, match="at least 2 classes"):
        LogisticRegressionClassifier(n_classes=1)
    with pytest.raises(MalformedInputError, match="unique"):
        CellTypistClassifier(n_classes=3, genes=np.array(["A", "A"]))


def test_celltypist_refuses_scaled_data_instead_of_guessing():
    X, y = _marker_data(8)
    genes = np.array([f"G{i}" for i in range(8)])
    model = CellTypistClassifier(n_classes=3, genes=genes).fit(X, y, X, y)
    with pytest.raises(MalformedInputError, match="log1p"):
        model.predict_proba(X - 5.0)


def test_metrics_match_scikit_learn_on_random_labels():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(3)
    for _ in range(20):
        y_true, y_pred = rng.integers(0, 5, 50), rng.integers(0, 6, 50)
        assert accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, y_pred))
        assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_macro_f1_by_hand():
    # class 0: tp 1, fp 1, fn 1 -> F1 0.5; class 1: tp 1, fp 1, fn 1 -> 0.5; class 2: tp 1 -> 1.0
    assert macro_f1(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 0, 2])) == pytest.approx(2 / 3)
