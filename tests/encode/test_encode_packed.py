"""Shipped node-text embeddings: int8 round trip, used only for the matching encoder and text."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from celltosg.encode import attach_text_embeddings, text_embeddings
from celltosg.encode._packed import EMBEDDINGS_FILE, dequantize, quantize
from celltosg.errors import MalformedInputError
from celltosg.kg import KnowledgeGraph, embedded_pack_path, verify_pack, write_pack


class CountingEncoder:
    """Fake encoder: the text's SHA-256 bytes centred on zero; records every text it encodes."""

    def __init__(self, name: str = "fake-v1", dim: int = 8) -> None:
        self.name, self.dim, self.seen = name, dim, []

    def encode(self, items: list[str]) -> np.ndarray:
        self.seen.extend(items)
        digests = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: self.dim], np.uint8) for t in items]
        return (np.array(digests, dtype=np.float32).reshape(len(items), self.dim) - 127.5) / 128


class RefusingEncoder(CountingEncoder):
    """Has the given encoder's name but fails when asked to encode anything."""

    def encode(self, items: list[str]) -> np.ndarray:
        raise AssertionError(f"the encoder was called on {len(items)} texts")


def _pack_with_embeddings(tmp_path, tiny_kg, encoder) -> KnowledgeGraph:
    texts = tiny_kg.nodes["text"].tolist()
    out = write_pack(tmp_path / "pack", tiny_kg.nodes, tiny_kg.edges, tiny_kg.sequences, tiny_kg.genesets, [],
                     text_embeddings=(encoder.name, encoder.encode(texts)))
    return KnowledgeGraph.load(out)


def test_int8_round_trip_error_is_within_half_a_step():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 384)).astype(np.float32)
    vectors[3] = 0.0
    codes, scale = quantize(vectors)
    assert codes.dtype == np.int8 and scale.shape == (200,)
    back = dequantize(codes, scale)
    assert np.all(np.abs(back - vectors) <= scale[:, None] / 2 + 1e-7)
    assert np.abs(codes).max() == 127 and scale[3] == 0 and not back[3].any()
    norms = np.linalg.norm(back, axis=1) * np.linalg.norm(vectors, axis=1)
    cosine = (back * vectors).sum(axis=1)[norms > 0] / norms[norms > 0]
    assert cosine.min() > 0.999


def test_shipped_vectors_replace_the_encoder(tmp_path, tiny_kg):
    kg = _pack_with_embeddings(tmp_path, tiny_kg, CountingEncoder())
    assert json.loads((kg.pack_dir / "pack.json").read_text())["checksum"] == tiny_kg.checksum
    emb = text_embeddings(kg, encoder=RefusingEncoder(), cache_dir=tmp_path / "cache")
    expected = CountingEncoder().encode(kg.nodes["text"].tolist())
    step = np.abs(expected).max(axis=1) / 127
    assert emb.shape == expected.shape and emb.dtype == np.float32
    assert np.all(np.abs(emb - expected) <= step[:, None] / 2 + 1e-4)
    assert verify_pack(kg.pack_dir) == []


def test_other_encoder_or_changed_text_is_computed(tmp_path, tiny_kg):
    kg = _pack_with_embeddings(tmp_path, tiny_kg, CountingEncoder("fake-v1"))
    other = CountingEncoder("fake-v2")
    text_embeddings(kg, encoder=other, cache_dir=tmp_path / "cache")
    assert len(other.seen) == len(set(kg.nodes["text"]))  # no shipped vectors for another encoder version
    kg.nodes.loc[3, "text"] = "GENE3: a rewritten description."
    same = CountingEncoder("fake-v1")
    emb = text_embeddings(kg, encoder=same, cache_dir=tmp_path / "cache")
    assert same.seen == ["GENE3: a rewritten description."]
    np.testing.assert_array_equal(emb[3], CountingEncoder().encode([kg.nodes.loc[3, "text"]])[0])


def test_subgraph_rows_follow_its_nodes(tmp_path, tiny_kg):
    kg = _pack_with_embeddings(tmp_path, tiny_kg, CountingEncoder())
    sub = kg.subgraph(["GENE7", "GENE2"])
    emb = text_embeddings(sub, encoder=RefusingEncoder(), cache_dir=tmp_path / "cache")
    full = text_embeddings(kg, encoder=RefusingEncoder(), cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(emb, full[sub.parent_index])
    assert sub.nodes["symbol"].tolist() == ["GENE7", "GENE2", "GENE2", "GENE7"]


def test_damaged_file_is_an_error_and_verify_names_it(tmp_path, tiny_kg):
    kg = _pack_with_embeddings(tmp_path, tiny_kg, CountingEncoder())
    path = kg.pack_dir / EMBEDDINGS_FILE
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(MalformedInputError, match="sha256"):
        text_embeddings(kg, encoder=CountingEncoder(), cache_dir=tmp_path / "cache")
    assert verify_pack(kg.pack_dir) == [EMBEDDINGS_FILE]


def test_attach_adds_only_the_embeddings(tmp_path, tiny_kg_dir):
    pack = tmp_path / "pack"
    shutil.copytree(tiny_kg_dir, pack)
    before = json.loads((pack / "pack.json").read_text())
    entry = attach_text_embeddings(pack, encoder=CountingEncoder(), cache_dir=tmp_path / "cache")
    after = json.loads((pack / "pack.json").read_text())
    assert {k: v for k, v in after.items() if k != "text_embeddings"} == before
    assert after["text_embeddings"] == entry and entry["encoder"] == "fake-v1" and entry["dim"] == 8
    kg = KnowledgeGraph.load(pack)
    assert text_embeddings(kg, encoder=RefusingEncoder(), cache_dir=tmp_path / "cache").shape == (kg.n_nodes, 8)


def test_human_pack_ships_minilm_vectors_close_to_fresh_ones(tmp_path):
    from celltosg.encode import MiniLMEncoder, encode_texts

    kg = KnowledgeGraph.load("human")
    minilm = MiniLMEncoder()
    entry = json.loads((embedded_pack_path("human") / "pack.json").read_text())["text_embeddings"]
    assert entry["encoder"] == minilm.name and entry["n_nodes"] == kg.n_nodes
    shipped = text_embeddings(kg, encoder=RefusingEncoder(minilm.name, 384), cache_dir=tmp_path)
    rows = np.random.default_rng(0).choice(kg.n_nodes, 16, replace=False)
    fresh = encode_texts(kg.nodes["text"].iloc[rows].tolist(), encoder=minilm, cache_dir=tmp_path)
    cosine = (shipped[rows] * fresh).sum(axis=1) / np.linalg.norm(shipped[rows], axis=1)
    assert cosine.min() > 0.999
