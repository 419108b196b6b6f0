"""On-disk embedding cache: one SQLite file per cache directory, rows keyed by (model, sha256 of the input).

Every text (or sequence) is encoded once ever per model: lookups return the stored vectors and only
the missing inputs go to the encoder. Writes are single SQLite transactions, so an interrupted run
leaves either all or none of a batch, and concurrent processes may share one cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from celltosg.errors import CellTOSGError, MalformedInputError

log = logging.getLogger(__name__)

_CHUNK = 500  # bound parameters per lookup query, well under SQLite's limit
_DB_NAME = "embeddings.sqlite"


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns strings into fixed-size vectors.

    Attributes
    ----------
    name
        A stable identifier of the model and its version; it keys the cache, so change it whenever
        the vectors would change.
    dim
        The length ``d`` of every vector.
    """

    name: str
    dim: int

    def encode(self, items: list[str]) -> np.ndarray:
        """Encode ``items`` into an array of shape ``(len(items), d)``."""
        ...


def default_cache_dir() -> Path:
    """``$CELLTOSG_CACHE`` when set, else ``~/.cache/celltosg``."""
    env = os.environ.get("CELLTOSG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "celltosg"


def text_hash(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors stored per (model name, input hash) in ``<cache_dir>/embeddings.sqlite``."""

    def __init__(self, cache_dir: str | os.PathLike | None = None) -> None:
        self.directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CellTOSGError(
                f"cannot create the embedding cache directory {self.directory}: {error}; "
                "pass cache_dir= or set CELLTOSG_CACHE to a writable directory"
            ) from error
        self.path = self.directory / _DB_NAME
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS embedding (model TEXT NOT NULL, hash TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of ``hashes`` under ``model`` (missing hashes are absent from the result)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._connect() as db:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT hash, dim, vector FROM embedding WHERE model = ? AND hash IN ({marks})",
                    [model, *chunk],
                )
                for key, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.size != dim:
                        raise MalformedInputError(
                            f"embedding cache {self.path} holds a corrupt vector for model {model!r}; "
                            "delete the file to rebuild it"
                        )
                    found[key] = vector
        return found

    def put(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (shape ``(len(hashes), d)``) under ``model`` in one transaction."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(model, key, int(vector.size), vector.tobytes()) for key, vector in zip(hashes, vectors, strict=True)]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO embedding VALUES (?, ?, ?, ?)", rows)


def cached_encode(
    items: Sequence[str],
    encoder: Encoder,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    description: str = "encoding",
) -> np.ndarray:
    """Encode ``items`` through ``encoder``, reusing and filling the on-disk cache.

    Returns
    -------
    np.ndarray
        float32, shape ``(len(items), encoder.dim)``; row ``i`` is the vector of ``items[i]``.
    """
    from celltosg.progress import progress

    items = list(items)
    cache = EmbeddingCache(cache_dir)
    hashes = [text_hash(item) for item in items]
    stored = cache.get(encoder.name, hashes)
    missing = {key: item for key, item in zip(hashes, items, strict=True) if key not in stored}
    log.debug("%s: %d inputs, %d cached, %d to encode", encoder.name, len(items), len(stored), len(missing))
    keys = list(missing)
    starts = range(0, len(keys), batch_size)
    for start in progress(starts, description=description, total=len(starts)):
        batch = keys[start : start + batch_size]
        vectors = np.asarray(encoder.encode([missing[key] for key in batch]), dtype=np.float32)
        if vectors.shape != (len(batch), encoder.dim):
            raise MalformedInputError(
                f"encoder {encoder.name!r} returned shape {vectors.shape} for {len(batch)} inputs; "
                f"encode() must return an array of shape (n_inputs, {encoder.dim})"
            )
        cache.put(encoder.name, batch, vectors)
        stored.update(zip(batch, vectors, strict=True))
    wrong = {stored[key].size for key in hashes} - {encoder.dim}
    if wrong:
        raise MalformedInputError(
            f"cached vectors of model {encoder.name!r} in {cache.path} have sizes {sorted(wrong)}, not "
            f"{encoder.dim}; give each model version its own name, or delete the cache file"
        )
    out = np.zeros((len(items), encoder.dim), dtype=np.float32)
    for row, key in enumerate(hashes):
        out[row] = stored[key]
    return out
