"""Sequence features: k-mer composition by hand, the fixed projection, the user-encoder hook."""

from __future__ import annotations

import numpy as np

from celltosg.encode import AMINO_ACIDS, KmerProjection, kmer_composition, sequence_features


def _col(kmer: str) -> int:
    code = 0
    for residue in kmer:
        code = code * 20 + AMINO_ACIDS.index(residue)
    return code


def test_kmer_composition_by_hand():
    # "ACAAX" + "cw": k=1 -> A:3/4, C:1/4 ; C:1/2, W:1/2 (X skipped, case ignored)
    f1 = kmer_composition(["ACAAX", "cw", "", "XX"], 1)
    assert f1.shape == (4, 20)
    assert f1[0, _col("A")] == 0.75 and f1[0, _col("C")] == 0.25 and f1[0].sum() == 1.0
    assert f1[1, _col("C")] == 0.5 and f1[1, _col("W")] == 0.5
    assert not f1[2].any() and not f1[3].any()
    # k=2: AC, CA, AA (AX skipped) -> 1/3 each; "cw" -> CW; no pair spans two sequences
    f2 = kmer_composition(["ACAAX", "cw", "", "XX"], 2)
    assert f2.shape == (4, 400)
    for pair in ("AC", "CA", "AA"):
        assert np.isclose(f2[0, _col(pair)], 1 / 3)
    assert f2[0].sum() == 1.0
    assert f2[1, _col("CW")] == 1.0 and f2[1].sum() == 1.0


def test_projection_is_fixed_and_follows_the_documented_formula():
    sequences = ["MKTAYIAKQR", "ACDEFGHIKLMNPQRSTVWY"]
    a = KmerProjection(dim=16, seed=3).encode(sequences)
    b = KmerProjection(dim=16, seed=3).encode(sequences[::-1])
    assert a.shape == (2, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b[::-1])  # per sequence, independent of the others
    # the formula, written out independently
    p = KmerProjection(dim=16, seed=3)
    back = p._p1
    f1, f2 = kmer_composition(sequences, 1), kmer_composition(sequences, 2)
    z = np.hstack([(f1 - back) / np.sqrt(back),
                   (f2 - np.outer(back, back).ravel()) / np.sqrt(np.outer(back, back).ravel()) / np.sqrt(20)])
    r = np.random.default_rng(3).standard_normal((420, 16)) / 4.0
    np.testing.assert_allclose(a, z @ r, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a, KmerProjection(dim=16, seed=4).encode(sequences))


def test_sequence_features_zero_rows_without_sequence(tiny_kg):
    features, mask = sequence_features(tiny_kg, dim=12)
    assert features.shape == (tiny_kg.n_nodes, 12) and mask.shape == (tiny_kg.n_nodes,)
    table = tiny_kg.sequences
    expected = np.zeros(tiny_kg.n_nodes, dtype=bool)
    expected[table["node_index"].to_numpy()] = True
    np.testing.assert_array_equal(mask, expected)
    assert not features[~mask].any()
    row = int(table["node_index"].iloc[1])
    np.testing.assert_allclose(features[row], KmerProjection(12).encode([table["sequence"].iloc[1]])[0])


def test_user_sequence_encoder_is_used_and_cached(tiny_kg, tmp_path):
    class LengthModel:
        name = "length-plm"
        dim = 2

        def __init__(self):
            self.calls = 0

        def encode(self, sequences):
            self.calls += len(sequences)
            return np.array([[len(s), s.count("A")] for s in sequences], dtype=np.float32)

    model = LengthModel()
    features, mask = sequence_features(tiny_kg, encoder=model, cache_dir=tmp_path)
    table = tiny_kg.sequences
    row = int(table["node_index"].iloc[0])
    assert features.shape == (tiny_kg.n_nodes, 2)
    assert features[row, 0] == len(table["sequence"].iloc[0])
    assert model.calls == mask.sum() == len(table)
    sequence_features(tiny_kg, encoder=model, cache_dir=tmp_path)
    assert model.calls == len(table)
