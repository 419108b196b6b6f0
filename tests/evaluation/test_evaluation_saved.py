from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltosg.errors import MalformedInputError
from celltosg.evaluation import Split, save_splits, saved_seeds, saved_splits


def _split(seed, kg):
    rng = np.random.default_rng(seed)
    X = rng.random((30, kg.n_rna)).astype(np.float32)
    y = np.arange(30) % 2
    fixed = np.random.default_rng(99)  # node features depend on the nodes only, not on the seed
    features = (fixed.random((kg.n_nodes, 6)).astype(np.float32), fixed.random((kg.n_nodes, 4)).astype(np.float32),
                fixed.random(kg.n_nodes) < 0.5)
    return Split(X[:20], y[:20], X[20:25], y[20:25], X[25:], y[25:], genes=kg.rna_symbols.astype(str),
                 label_names=["no", "yes"], kg=kg, meta={"task": "disease", "seed": seed},
                 node_features=features)


def test_saved_splits_come_back_identical(tiny_kg, tmp_path):
    originals = {seed: _split(seed, tiny_kg) for seed in (0, 3)}
    save_splits(lambda seed: originals[seed], [0, 3], tmp_path / "splits")
    assert saved_seeds(tmp_path / "splits") == [0, 3]
    assert len(list((tmp_path / "splits" / "node_features").iterdir())) == 1  # shared by both seeds
    make = saved_splits(tmp_path / "splits")
    for seed, original in originals.items():
        loaded = make(seed)
        for part in ("train", "val", "test"):
            for a, b in zip(loaded.part(part), original.part(part), strict=True):
                np.testing.assert_array_equal(a, b)
        assert list(loaded.genes) == list(original.genes) and loaded.label_names == ["no", "yes"]
        assert loaded.meta == {"task": "disease", "seed": seed}
        pd.testing.assert_frame_equal(loaded.kg.edges, tiny_kg.edges)
        assert loaded.kg.n_rna == tiny_kg.n_rna and loaded.kg.n_protein == tiny_kg.n_protein
        for a, b in zip(loaded.node_features, original.node_features, strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(MalformedInputError, match="seeds"):
        make(7)
    with pytest.raises(MalformedInputError, match="splits.json"):
        saved_splits(tmp_path)
