"""Text encoder: the cache encodes each text once ever; the real frozen model is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from celltosg.encode import EmbeddingCache, encode_texts, text_embeddings, text_hash
from celltosg.errors import MalformedInputError


class CountingEncoder:
    """Fake encoder: a vector derived from the text's characters; records every text it sees."""

    def __init__(self, name: str = "fake-v1", dim: int = 8) -> None:
        self.name = name
        self.dim = dim
        self.seen: list[str] = []

    def encode(self, items: list[str]) -> np.ndarray:
        self.seen.extend(items)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for row, text in enumerate(items):
            for position, char in enumerate(text):
                out[row, position % self.dim] += ord(char)
        return out


def test_cache_hit_avoids_reencoding(tmp_path):
    encoder = CountingEncoder()
    first = encode_texts(["alpha", "beta", "alpha"], encoder=encoder, cache_dir=tmp_path, batch_size=1)
    assert sorted(encoder.seen) == ["alpha", "beta"]  # the duplicate is encoded once
    fresh = CountingEncoder()
    second = encode_texts(["beta", "gamma", "alpha"], encoder=fresh, cache_dir=tmp_path)
    assert fresh.seen == ["gamma"]  # only the missing text reaches a fresh encoder
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[2], first[0])
    assert second[1, 0] == ord("g") and second[1, 4] == ord("a")  # rows come back in input order


def test_cache_is_keyed_by_model_name(tmp_path):
    encode_texts(["alpha"], encoder=CountingEncoder("a"), cache_dir=tmp_path)
    other = CountingEncoder("b")
    encode_texts(["alpha"], encoder=other, cache_dir=tmp_path)
    assert other.seen == ["alpha"]
    stored = EmbeddingCache(tmp_path).get("a", [text_hash("alpha"), text_hash("nothing")])
    assert list(stored) == [text_hash("alpha")]


def test_wrong_encoder_shape_is_reported(tmp_path):
    class Broken(CountingEncoder):
        def encode(self, items):
            return np.zeros((len(items), self.dim + 1))

    with pytest.raises(MalformedInputError, match="shape"):
        encode_texts(["x"], encoder=Broken(), cache_dir=tmp_path)


def test_text_embeddings_rows_follow_nodes(tiny_kg, tmp_path):
    encoder = CountingEncoder()
    emb = text_embeddings(tiny_kg, encoder=encoder, cache_dir=tmp_path)
    assert emb.shape == (tiny_kg.n_nodes, 8) and emb.dtype == np.float32
    texts = tiny_kg.nodes["text"].tolist()
    assert len(encoder.seen) == len(set(texts))  # RNA and protein of one gene share their text
    np.testing.assert_array_equal(emb[5], CountingEncoder().encode([texts[5]])[0])
    text_embeddings(tiny_kg, encoder=encoder, cache_dir=tmp_path)
    assert len(encoder.seen) == len(set(texts))  # second call: all cache hits


def test_default_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLTOSG_CACHE", str(tmp_path / "c"))
    encode_texts(["alpha"], encoder=CountingEncoder())
    assert (tmp_path / "c" / "embeddings.sqlite").is_file()


def test_real_minilm_is_offline_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = ["TP53: tumor protein p53", "EGFR: epidermal growth factor receptor", "TP53: tumor protein p53"]
    emb = encode_texts(texts, cache_dir=tmp_path)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(emb[0], emb[2])
    assert emb[0] @ emb[1] < 0.99
    again = encode_texts(texts[:2], cache_dir=tmp_path)  # from the cache
    np.testing.assert_array_equal(again, emb[:2])
