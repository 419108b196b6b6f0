"""Streaming rows per second for one shuffled epoch: TOSGDataset (whole chunks, buffer shuffle) against
reading the same rows in a random order from a memory-mapped dense float32 array.

Run: .venv/bin/python benchmarks/loader_stream.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from loader_query import bench_store, default_store_dir  # noqa: E402

BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5,000 rows of the 20,000-meta-cell store")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=None, help="rows streamed (default 20,000; quick 5,000)")
    args = parser.parse_args()
    store = bench_store(args.store or default_store_dir(args.quick), 20_000 if args.quick else 200_000)
    n = args.rows or (5_000 if args.quick else 20_000)
    positions = np.arange(n)
    import zarr  # noqa: F401  (imported before the timers, like numpy for the memmap)

    from celltosg.loader import TOSGDataset
    from celltosg.loader._stream import normalize_log1p_inplace

    dataset = TOSGDataset(store, positions, batch_size=BATCH, buffer_size=4096, seed=0)
    start = time.perf_counter()
    seen = sum(batch.shape[0] for batch in dataset)
    ours = time.perf_counter() - start
    assert seen == n

    dense = Path(store.root).parent / "celltosg_bench_stream_dense.npy"
    array = np.lib.format.open_memmap(dense, mode="w+", dtype=np.float32, shape=(n, store.n_nodes))
    for s in range(0, n, 2048):
        array[s:s + 2048] = store.read_rows(positions[s:s + 2048])
    array.flush()
    del array
    mm = np.load(dense, mmap_mode="r")
    order = np.random.default_rng(0).permutation(n)
    start = time.perf_counter()
    for s in range(0, n, BATCH):
        idx = np.sort(order[s:s + BATCH])
        normalize_log1p_inplace(mm[idx])  # the same in-place normalisation as the dataset
    base = time.perf_counter() - start
    dense.unlink()
    print(f"{n:,} rows x {store.n_nodes:,} genes, batches of {BATCH}, shuffled, normalised in place "
          "(same function both ways); memmap file in the page cache (just written)")
    print(f"TOSGDataset (chunks + buffer shuffle): {n / ours:,.0f} rows/s")
    print(f"memory-mapped dense array, random rows: {n / base:,.0f} rows/s "
          f"({n * store.n_nodes * 4 / 1e9:.1f} GB on disk vs the store's compressed shards)")
    print(f"ratio (ours / memmap): {base / ours:.2f}x")


if __name__ == "__main__":
    main()
