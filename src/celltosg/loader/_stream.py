"""Stream rows from a store to PyTorch: whole chunks read, shuffled in a buffer, sharded across ranks."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd

from celltosg.errors import QueryError
from celltosg.loader._normalize import TARGET_SUM, library_scale, normalize_log1p_inplace

logger = logging.getLogger(__name__)

try:
    from torch.utils.data import DataLoader, IterableDataset
except ImportError:  # pragma: no cover - torch is a dependency
    IterableDataset = object
    DataLoader = object


def chunk_ids(store, positions: np.ndarray) -> np.ndarray:
    """Storage chunk number (int64, (n,)) of each position: rows sharing a number share one zarr chunk."""
    names = [entry["name"] for entry in store.manifest["shards"]]
    obs = store.obs
    shard = pd.Categorical(obs["shard"].to_numpy()[positions], categories=names).codes.astype(np.int64)
    row = obs["row"].to_numpy(dtype=np.int64)[positions]
    return shard * (1 << 32) + row // int(store.manifest["chunk_rows"])


def partition_chunks(sizes: np.ndarray, n_parts: int) -> list[np.ndarray]:
    """Deal chunks (in the given order) to ``n_parts`` parts, each to the part with fewest rows so far.

    Every chunk lands in exactly one part; part sizes differ by at most one chunk.
    """
    parts: list[list[int]] = [[] for _ in range(n_parts)]
    load = np.zeros(n_parts, dtype=np.int64)
    for i, size in enumerate(sizes):
        j = int(np.argmin(load))
        parts[j].append(i)
        load[j] += size
    return [np.asarray(p, dtype=np.int64) for p in parts]


def _shard_identity(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(shard index, number of shards) over DDP ranks x DataLoader workers."""
    import torch.distributed as dist
    from torch.utils.data import get_worker_info

    if world_size is None:
        initialised = dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size() if initialised else 1
        rank = dist.get_rank() if initialised else 0
    rank = rank or 0
    info = get_worker_info()
    workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
    return rank * workers + worker, world_size * workers


class TOSGDataset(IterableDataset):
    """Stream meta-cells of a store as ``x`` (float32 (n_genes,)) or ``(x, y)`` rows, or whole batches.

    Each epoch reads every selected row once across all DDP ranks and DataLoader workers: the storage
    chunks holding them are shuffled (seed + epoch), dealt to the (rank, worker) shards, read whole and
    shuffled within a buffer of ``buffer_size`` rows.

    Parameters
    ----------
    store
        A :class:`~celltosg.store.TOSGStore`.
    positions
        Store positions to stream (default: all); repeats allowed.
    labels
        Optional int64 (len(positions),) class per position.
    columns
        Store columns to keep (default: all), e.g. ``cohort.genes``.
    batch_size
        Yield (batch_size, n_genes) tensors (use ``DataLoader(batch_size=None)``) instead of rows.
    shuffle, seed, buffer_size
        Chunk order and in-buffer shuffling; the epoch is added to ``seed`` (see :meth:`set_epoch`).
    normalize
        Library-size 1e4 + log1p per row.
    rank, world_size
        Override the DDP rank and world size (default: from ``torch.distributed``).
    equal_steps
        In batch mode, pad every DDP rank to the batch count of the busiest rank by re-reading its own
        first rows, so that all ranks take the same number of steps (DDP synchronises each one).
    return_rows
        In batch mode, add the int64 (B,) indices into ``positions`` as the last batch element.
    """

    def __init__(self, store, positions: np.ndarray | None = None, labels: np.ndarray | None = None, *,
                 columns: np.ndarray | None = None, batch_size: int | None = None, shuffle: bool = True,
                 seed: int = 2025, buffer_size: int = 4096, normalize: bool = True, target_sum: float = TARGET_SUM,
                 rank: int | None = None, world_size: int | None = None, equal_steps: bool = False,
                 return_rows: bool = False):
        super().__init__()
        self.store = store
        self.positions = np.arange(store.n_cells, dtype=np.int64) if positions is None else np.asarray(
            positions, dtype=np.int64)
        if labels is not None and len(labels) != len(self.positions):
            raise QueryError(f"labels has {len(labels)} entries for {len(self.positions)} positions.")
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.buffer_size, self.normalize, self.target_sum = max(1, buffer_size), normalize, target_sum
        self.rank, self.world_size = rank, world_size
        self.equal_steps, self.return_rows = equal_steps, return_rows
        self.epoch = 0
        chunks = chunk_ids(store, self.positions)
        self._chunk_keys, self._chunk_of = np.unique(chunks, return_inverse=True)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration follows (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Rows (or batches) this process yields per epoch when not sharded; the total for all shards."""
        n = len(self.positions)
        return n if self.batch_size is None else -(-n // self.batch_size)

    def shard_indices(self, shard: int, n_shards: int) -> list[np.ndarray]:
        """Indices into :attr:`positions` per chunk that shard ``shard`` of ``n_shards`` reads this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self._chunk_keys)) if self.shuffle else np.arange(len(self._chunk_keys))
        members = np.argsort(self._chunk_of, kind="stable")
        bounds = np.cumsum(np.bincount(self._chunk_of, minlength=len(self._chunk_keys)))
        groups = np.split(members, bounds[:-1])
        sizes = np.array([len(groups[c]) for c in order], dtype=np.int64)
        mine = partition_chunks(sizes, n_shards)[shard]
        return [groups[order[i]] for i in mine]

    def _buffers(self, chunks: list[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (indices, values, order): whole chunks gathered up to ``buffer_size`` rows, unshuffled,
        with the permutation to read them in.

        A background thread decodes the next chunk (into one of two scratch arrays) and sums its rows
        while this one is normalised into a float32 buffer. In batch mode every batch is copied out of the buffer, so it
        is reused; rows are yielded as views, so each fill gets a new one.
        """
        from concurrent.futures import ThreadPoolExecutor

        if not chunks:
            return
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        longest = max(len(idx) for idx in chunks)
        width = self.store.n_nodes if self.columns is None else len(self.columns)
        scratch = [np.empty((longest, self.store.n_nodes), dtype=np.float32) for _ in range(2)]

        def decode(i: int) -> tuple[np.ndarray, np.ndarray | None]:
            idx = chunks[i]
            x = self.store.read_rows_into(self.positions[idx], scratch[i % 2][:len(idx)])
            x = x if self.columns is None else x[:, self.columns]
            return x, library_scale(x, self.target_sum) if self.normalize else None

        buffer, buffer_idx, filled = None, [], 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(decode, 0)
            for i, idx in enumerate(chunks):
                x, scale = pending.result()
                if i + 1 < len(chunks):  # scratch (i + 1) % 2 held chunk i - 1, already copied out
                    pending = pool.submit(decode, i + 1)
                if buffer is None:
                    buffer = np.empty((self.buffer_size - 1 + longest, width), dtype=np.float32)
                slot = buffer[filled:filled + len(idx)]
                if self.normalize:
                    normalize_log1p_inplace(x, out=slot, scale=scale)
                else:
                    np.copyto(slot, x)
                buffer_idx.append(idx)
                filled += len(idx)
                if filled >= self.buffer_size or i == len(chunks) - 1:
                    idx_all = np.concatenate(buffer_idx)
                    order = rng.permutation(len(idx_all)) if self.shuffle else np.arange(len(idx_all))
                    yield idx_all, buffer[:filled], order
                    buffer_idx, filled = [], 0
                    if self.batch_size is None:
                        buffer = None

    def padding_steps(self, shard: int, n_shards: int, workers: int) -> int:
        """Batches shard ``shard`` adds so its rank takes as many steps as the busiest rank (0 unless it is
        the rank's first worker); ranks are blocks of ``workers`` consecutive shards."""
        if shard % workers:
            return 0
        steps = [-(-sum(len(i) for i in self.shard_indices(s, n_shards)) // self.batch_size)
                 for s in range(n_shards)]
        per_rank = [sum(steps[r:r + workers]) for r in range(0, n_shards, workers)]
        return max(per_rank) - per_rank[shard // workers]

    def __iter__(self):
        from torch.utils.data import get_worker_info

        shard, n_shards = _shard_identity(self.rank, self.world_size)
        chunks = self.shard_indices(shard, n_shards)
        yield from self._iter_chunks(chunks)
        if self.equal_steps and self.batch_size is not None:
            info = get_worker_info()
            pad = self.padding_steps(shard, n_shards, info.num_workers if info is not None else 1)
            while pad > 0 and chunks:  # re-read this shard's first rows, batch by batch
                for batch in self._iter_chunks(chunks):
                    yield batch
                    pad -= 1
                    if pad == 0:
                        break

    def _iter_chunks(self, chunks: list[np.ndarray]):
        import torch

        carry_idx, carry_x = np.empty(0, dtype=np.int64), None
        for idx, x, order in self._buffers(chunks):
            if self.batch_size is None:
                for j in order:
                    row = torch.from_numpy(x[j])
                    yield row if self.labels is None else (row, int(self.labels[idx[j]]))
                continue
            start = 0
            if len(carry_idx):  # complete the batch left over from the previous buffer
                start = min(self.batch_size - len(carry_idx), len(order))
                carry_idx = np.concatenate([carry_idx, idx[order[:start]]])
                carry_x = np.concatenate([carry_x, x[order[:start]]])
                if len(carry_idx) < self.batch_size:
                    continue
                yield self._batch(carry_idx, carry_x)
            while start + self.batch_size <= len(order):
                take = order[start:start + self.batch_size]
                yield self._batch(idx[take], x[take])
                start += self.batch_size
            carry_idx, carry_x = idx[order[start:]], x[order[start:]]
        if self.batch_size is not None and len(carry_idx):
            yield self._batch(carry_idx, carry_x)

    def _batch(self, idx: np.ndarray, x: np.ndarray):
        import torch

        xb = torch.from_numpy(np.ascontiguousarray(x))
        out = (xb,) if self.labels is None else (xb, torch.from_numpy(self.labels[idx]))
        out = (*out, torch.from_numpy(idx)) if self.return_rows else out
        return out[0] if len(out) == 1 else out


class EpochDataLoader(DataLoader):
    """A DataLoader that calls ``dataset.set_epoch`` with 0, 1, 2, ... each time it is iterated."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._epochs_started = 0

    def __iter__(self):
        self.dataset.set_epoch(self._epochs_started)
        self._epochs_started += 1
        return super().__iter__()
