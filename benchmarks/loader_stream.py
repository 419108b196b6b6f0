"""Streaming rows per second for one shuffled epoch: TOSGDataset (whole chunks, buffer shuffle) against
reading the same rows in a random order from a memory-mapped dense float32 array, with a warm and a
cold page cache.

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
from loader_rows import drop_cache  # noqa: E402

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
    from celltosg.loader._normalize import normalize_log1p_inplace

    dense = Path(store.root).parent / "celltosg_bench_stream_dense.npy"
    array = np.lib.format.open_memmap(dense, mode="w+", dtype=np.float32, shape=(n, store.n_nodes))
    for s in range(0, n, 2048):
        array[s:s + 2048] = store.read_rows(positions[s:s + 2048])
    array.flush()
    del array
    store_files = [p for p in Path(store.root).rglob("*") if p.is_file()]
    order = np.random.default_rng(0).permutation(n)

    def stream_ours() -> float:
        dataset = TOSGDataset(store, positions, batch_size=BATCH, buffer_size=4096, seed=0)
        start = time.perf_counter()
        seen = sum(batch.shape[0] for batch in dataset)
        assert seen == n
        return time.perf_counter() - start

    def stream_memmap() -> float:
        mm = np.load(dense, mmap_mode="r")
        start = time.perf_counter()
        for s in range(0, n, BATCH):
            normalize_log1p_inplace(mm[np.sort(order[s:s + BATCH])])  # the dataset's normalisation
        return time.perf_counter() - start

    print(f"{n:,} rows x {store.n_nodes:,} genes, batches of {BATCH}, shuffled, normalised in place "
          f"(same function both ways); dense memmap file {n * store.n_nodes * 4 / 1e9:.1f} GB vs the "
          f"store's compressed shards")
    for cache in ("warm", "cold"):
        if cache == "warm":  # one pass each to fill the page cache
            stream_ours(), stream_memmap()
        else:
            how = drop_cache(store_files + [dense])
        ours = stream_ours()
        if cache == "cold":
            drop_cache(store_files + [dense])
        base = stream_memmap()
        print(f"{cache:>4} cache: TOSGDataset (chunks + buffer shuffle) {n / ours:,.0f} rows/s | memory-mapped "
              f"dense array, random rows {n / base:,.0f} rows/s | ratio (ours / memmap) {base / ours:.2f}x")
    print(f"cold cache via {how}")
    dense.unlink()


if __name__ == "__main__":
    main()
